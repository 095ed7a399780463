//! `map`: one output record per input record.

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;
use timely::progress::Timestamp;

use crate::Step;

/// Extension trait for `map`.
pub trait MapStep<'s, T: Timestamp, D> {
    /// Replaces each record with `logic(record)`.
    ///
    /// ```
    /// use rill_operators::{MapStep, Step};
    /// use timely::dataflow::operators::{Capture, ToStream};
    /// use timely::dataflow::operators::capture::Extract;
    ///
    /// let out = timely::example(|scope| {
    ///     (1..4u32).to_stream(scope).container::<Vec<_>>()
    ///         .map_step(&Step::new("double"), |x| x * 2)
    ///         .capture()
    /// });
    /// let out: Vec<u32> = out.extract().into_iter().flat_map(|(_, d)| d).collect();
    /// assert_eq!(out, vec![2, 4, 6]);
    /// ```
    fn map_step<D2: 'static, L: FnMut(D) -> D2 + 'static>(
        self,
        step: &Step,
        logic: L,
    ) -> StreamVec<'s, T, D2>;
}

impl<'s, T: Timestamp, D: 'static> MapStep<'s, T, D> for StreamVec<'s, T, D> {
    fn map_step<D2: 'static, L: FnMut(D) -> D2 + 'static>(
        self,
        step: &Step,
        mut logic: L,
    ) -> StreamVec<'s, T, D2> {
        let step = step.clone();
        self.unary(Pipeline, &step.operator_name("map"), move |_, _| {
            move |input, output| {
                input.for_each(|cap, data| {
                    let n = data.len() as u64;
                    output
                        .session(&cap)
                        .give_iterator(data.drain(..).map(&mut logic));
                    step.record(n, n);
                });
            }
        })
    }
}
