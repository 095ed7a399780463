//! `filter`: keep the records a predicate accepts.

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;
use timely::progress::Timestamp;

use crate::Step;

/// Extension trait for `filter`.
pub trait FilterStep<'s, T: Timestamp, D> {
    /// Keeps the records for which `predicate` returns true.
    ///
    /// ```
    /// use rill_operators::{FilterStep, Step};
    /// use timely::dataflow::operators::{Capture, ToStream};
    /// use timely::dataflow::operators::capture::Extract;
    ///
    /// let out = timely::example(|scope| {
    ///     (0..6u32).to_stream(scope).container::<Vec<_>>()
    ///         .filter_step(&Step::new("odd"), |x| x % 2 == 1)
    ///         .capture()
    /// });
    /// let out: Vec<u32> = out.extract().into_iter().flat_map(|(_, d)| d).collect();
    /// assert_eq!(out, vec![1, 3, 5]);
    /// ```
    fn filter_step<P: FnMut(&D) -> bool + 'static>(self, step: &Step, predicate: P) -> Self;
}

impl<'s, T: Timestamp, D: 'static> FilterStep<'s, T, D> for StreamVec<'s, T, D> {
    fn filter_step<P: FnMut(&D) -> bool + 'static>(self, step: &Step, mut predicate: P) -> Self {
        let step = step.clone();
        self.unary(Pipeline, &step.operator_name("filter"), move |_, _| {
            move |input, output| {
                input.for_each(|cap, data| {
                    let n = data.len() as u64;
                    data.retain(|d| predicate(d));
                    step.record(n, data.len() as u64);
                    if !data.is_empty() {
                        output.session(&cap).give_container(data);
                    }
                });
            }
        })
    }
}
