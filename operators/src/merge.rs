//! `merge`: one stream holding the records of several.

use timely::dataflow::operators::Concatenate;
use timely::dataflow::StreamVec;
use timely::progress::Timestamp;

use crate::Step;

/// Extension trait for `merge`.
pub trait MergeStep<'s, T: Timestamp, D> {
    /// Merges `others` into this stream. Order between the inputs is not defined.
    ///
    /// ```
    /// use rill_operators::{MergeStep, Step};
    /// use timely::dataflow::operators::{Capture, ToStream};
    /// use timely::dataflow::operators::capture::Extract;
    ///
    /// let out = timely::example(|scope| {
    ///     let a = (0..2u32).to_stream(scope).container::<Vec<_>>();
    ///     let b = (10..12u32).to_stream(scope).container::<Vec<_>>();
    ///     a.merge_step(&Step::new("both"), vec![b]).capture()
    /// });
    /// let mut out: Vec<u32> = out.extract().into_iter().flat_map(|(_, d)| d).collect();
    /// out.sort();
    /// assert_eq!(out, vec![0, 1, 10, 11]);
    /// ```
    fn merge_step(self, step: &Step, others: Vec<Self>) -> Self
    where
        Self: Sized;
}

impl<'s, T: Timestamp, D: 'static> MergeStep<'s, T, D> for StreamVec<'s, T, D> {
    fn merge_step(self, _step: &Step, others: Vec<Self>) -> Self {
        let scope = self.scope();
        scope.concatenate(std::iter::once(self).chain(others))
    }
}
