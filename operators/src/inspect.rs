//! `inspect`: look at each record without changing the stream.

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;
use timely::progress::Timestamp;

use crate::Step;

/// Extension trait for `inspect`.
pub trait InspectStep<'s, T: Timestamp, D> {
    /// Calls `logic` with each record, then passes it on unchanged.
    ///
    /// ```
    /// use rill_operators::{InspectStep, Step};
    /// use std::sync::{Arc, Mutex};
    /// use timely::dataflow::operators::ToStream;
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let s = seen.clone();
    /// timely::example(move |scope| {
    ///     (0..3u32).to_stream(scope).container::<Vec<_>>()
    ///         .inspect_step(&Step::new("log"), move |x| s.lock().unwrap().push(*x));
    /// });
    /// assert_eq!(*seen.lock().unwrap(), vec![0, 1, 2]);
    /// ```
    fn inspect_step<L: FnMut(&D) + 'static>(self, step: &Step, logic: L) -> Self;
}

impl<'s, T: Timestamp, D: 'static> InspectStep<'s, T, D> for StreamVec<'s, T, D> {
    fn inspect_step<L: FnMut(&D) + 'static>(self, step: &Step, mut logic: L) -> Self {
        let step = step.clone();
        self.unary(Pipeline, &step.operator_name("inspect"), move |_, _| {
            move |input, output| {
                input.for_each(|cap, data| {
                    for d in data.iter() {
                        logic(d);
                    }
                    let n = data.len() as u64;
                    step.record(n, n);
                    output.session(&cap).give_container(data);
                });
            }
        })
    }
}
