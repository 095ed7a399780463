//! A step: the name and the meter every Rill operator is built with.

use std::fmt;
use std::rc::Rc;

/// Told how many records a step consumed and produced, once per batch.
pub trait Meter {
    /// Records `input` records consumed and `output` produced.
    fn record(&self, input: u64, output: u64);
}

/// A named step of a job.
#[derive(Clone)]
pub struct Step {
    name: Rc<str>,
    meter: Option<Rc<dyn Meter>>,
}

impl Step {
    /// A step with no meter.
    pub fn new(name: &str) -> Self {
        Step {
            name: name.into(),
            meter: None,
        }
    }

    /// A step whose record counts go to `meter`.
    pub fn with_meter(name: &str, meter: Rc<dyn Meter>) -> Self {
        Step {
            name: name.into(),
            meter: Some(meter),
        }
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of one of the step's internal operators: `"{step}.{role}"`.
    pub fn operator_name(&self, role: &str) -> String {
        format!("{}.{}", self.name, role)
    }

    /// Reports a batch to the meter, if there is one.
    #[inline]
    pub fn record(&self, input: u64, output: u64) {
        if let Some(m) = &self.meter {
            m.record(input, output);
        }
    }
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
