//! `branch`: route each record to the first of several named predicates that
//! matches, or to the "other" output.

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::StreamVec;
use timely::progress::operate::FrontierInterest;
use timely::progress::Timestamp;

use crate::Step;

/// A boxed branch predicate.
pub type Predicate<D> = Box<dyn FnMut(&D) -> bool>;

/// Extension trait for `branch`.
pub trait BranchStep<'s, T: Timestamp, D> {
    /// Splits the stream: a record goes to the output of the first predicate
    /// that accepts it, in order, or to the last ("other") output if none does.
    /// Returns one stream per predicate, then the "other" stream.
    ///
    /// ```
    /// use rill_operators::{BranchStep, Predicate, Step};
    /// use timely::dataflow::operators::{Capture, ToStream};
    /// use timely::dataflow::operators::capture::Extract;
    ///
    /// let (small, big, other) = timely::example(|scope| {
    ///     let preds: Vec<Predicate<u32>> = vec![Box::new(|x| *x < 3), Box::new(|x| *x > 7)];
    ///     let (mut outs, other) = (0..10u32).to_stream(scope).container::<Vec<_>>()
    ///         .branch_step(&Step::new("size"), preds);
    ///     let big = outs.pop().unwrap().capture();
    ///     let small = outs.pop().unwrap().capture();
    ///     (small, big, other.capture())
    /// });
    /// let flat = |c: std::sync::mpsc::Receiver<_>| -> Vec<u32> {
    ///     c.extract().into_iter().flat_map(|(_, d): (u64, Vec<u32>)| d).collect()
    /// };
    /// assert_eq!(flat(small), vec![0, 1, 2]);
    /// assert_eq!(flat(big), vec![8, 9]);
    /// assert_eq!(flat(other), vec![3, 4, 5, 6, 7]);
    /// ```
    fn branch_step(
        self,
        step: &Step,
        predicates: Vec<Predicate<D>>,
    ) -> (Vec<StreamVec<'s, T, D>>, StreamVec<'s, T, D>);
}

impl<'s, T: Timestamp, D: 'static> BranchStep<'s, T, D> for StreamVec<'s, T, D> {
    fn branch_step(
        self,
        step: &Step,
        mut predicates: Vec<Predicate<D>>,
    ) -> (Vec<StreamVec<'s, T, D>>, StreamVec<'s, T, D>) {
        let step = step.clone();
        let mut builder = OperatorBuilder::new(step.operator_name("branch"), self.scope());
        let mut input = builder.new_input(self, Pipeline);
        builder.set_notify_for(0, FrontierInterest::Never);

        let mut outputs = Vec::with_capacity(predicates.len() + 1);
        let mut streams = Vec::with_capacity(predicates.len() + 1);
        for _ in 0..=predicates.len() {
            let (output, stream) = builder.new_output();
            outputs.push(OutputBuilder::from(output));
            streams.push(stream);
        }

        builder.build(move |_| {
            let mut buffers: Vec<Vec<D>> = (0..outputs.len()).map(|_| Vec::new()).collect();
            move |_frontiers| {
                let mut handles: Vec<_> = outputs.iter_mut().map(|o| o.activate()).collect();
                input.for_each(|cap, data| {
                    let n = data.len() as u64;
                    for d in data.drain(..) {
                        let route = predicates
                            .iter_mut()
                            .position(|p| p(&d))
                            .unwrap_or(buffers.len() - 1);
                        buffers[route].push(d);
                    }
                    for (handle, buffer) in handles.iter_mut().zip(buffers.iter_mut()) {
                        if !buffer.is_empty() {
                            handle.session(&cap).give_container(buffer);
                            buffer.clear();
                        }
                    }
                    step.record(n, n);
                });
            }
        });

        let other = streams.pop().expect("branch always has an other output");
        (streams, other)
    }
}
