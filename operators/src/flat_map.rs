//! `flat_map`: zero or more output records per input record.

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;
use timely::progress::Timestamp;

use crate::Step;

/// Extension trait for `flat_map`.
pub trait FlatMapStep<'s, T: Timestamp, D> {
    /// Replaces each record with the records `logic(record)` yields.
    ///
    /// ```
    /// use rill_operators::{FlatMapStep, Step};
    /// use timely::dataflow::operators::{Capture, ToStream};
    /// use timely::dataflow::operators::capture::Extract;
    ///
    /// let out = timely::example(|scope| {
    ///     vec!["a b", "c"].to_stream(scope).container::<Vec<_>>()
    ///         .flat_map_step(&Step::new("words"), |line: &str| line.split(' ').collect::<Vec<_>>())
    ///         .capture()
    /// });
    /// let out: Vec<&str> = out.extract().into_iter().flat_map(|(_, d)| d).collect();
    /// assert_eq!(out, vec!["a", "b", "c"]);
    /// ```
    fn flat_map_step<I, L>(self, step: &Step, logic: L) -> StreamVec<'s, T, I::Item>
    where
        I: IntoIterator,
        I::Item: 'static,
        L: FnMut(D) -> I + 'static;
}

impl<'s, T: Timestamp, D: 'static> FlatMapStep<'s, T, D> for StreamVec<'s, T, D> {
    fn flat_map_step<I, L>(self, step: &Step, mut logic: L) -> StreamVec<'s, T, I::Item>
    where
        I: IntoIterator,
        I::Item: 'static,
        L: FnMut(D) -> I + 'static,
    {
        let step = step.clone();
        self.unary(Pipeline, &step.operator_name("flat_map"), move |_, _| {
            move |input, output| {
                input.for_each(|cap, data| {
                    let n = data.len() as u64;
                    let mut produced = 0u64;
                    let mut session = output.session(&cap);
                    for d in data.drain(..) {
                        for out in logic(d) {
                            produced += 1;
                            session.give(out);
                        }
                    }
                    step.record(n, produced);
                });
            }
        })
    }
}
