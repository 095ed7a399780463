//! `key_by`: give each record a key and send it to the worker that owns the
//! key's key group.

use std::hash::Hash;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;
use timely::progress::Timestamp;
use timely::ExchangeData;

use rill_state::KeyGroups;

use crate::Step;

/// Extension trait for `key_by`.
pub trait KeyByStep<'s, T: Timestamp, D> {
    /// Turns each record into a `(key, value, event time)` triple with `logic` and routes it
    /// to the worker owning the key's group under `groups`. After this, every
    /// record with a given key is on one worker, in its original per-worker order.
    ///
    /// ```
    /// use rill_operators::{KeyByStep, Step};
    /// use rill_state::KeyGroups;
    /// use timely::dataflow::operators::{Capture, ToStream};
    /// use timely::dataflow::operators::capture::Extract;
    ///
    /// let out = timely::example(|scope| {
    ///     (0..4u32).to_stream(scope).container::<Vec<_>>()
    ///         .key_by_step(&Step::new("parity"), KeyGroups::default(), |x| (x % 2, x, 0))
    ///         .capture()
    /// });
    /// let mut out: Vec<(u32, u32, u64)> = out.extract().into_iter().flat_map(|(_, d)| d).collect();
    /// out.sort();
    /// assert_eq!(out, vec![(0, 0, 0), (0, 2, 0), (1, 1, 0), (1, 3, 0)]);
    /// ```
    fn key_by_step<K, V, L>(
        self,
        step: &Step,
        groups: KeyGroups,
        logic: L,
    ) -> StreamVec<'s, T, (K, V, u64)>
    where
        K: ExchangeData + Hash,
        V: ExchangeData,
        L: FnMut(D) -> (K, V, u64) + 'static;
}

impl<'s, T: Timestamp, D: 'static> KeyByStep<'s, T, D> for StreamVec<'s, T, D> {
    fn key_by_step<K, V, L>(
        self,
        step: &Step,
        groups: KeyGroups,
        mut logic: L,
    ) -> StreamVec<'s, T, (K, V, u64)>
    where
        K: ExchangeData + Hash,
        V: ExchangeData,
        L: FnMut(D) -> (K, V, u64) + 'static,
    {
        let peers = self.scope().peers();
        let keyed_step = step.clone();
        let keyed: StreamVec<'s, T, (K, V, u64)> =
            self.unary(Pipeline, &step.operator_name("key"), move |_, _| {
                move |input, output| {
                    input.for_each(|cap, data| {
                        let n = data.len() as u64;
                        output
                            .session(&cap)
                            .give_iterator(data.drain(..).map(&mut logic));
                        keyed_step.record(n, n);
                    });
                }
            });
        let route =
            move |(k, _, _): &(K, V, u64)| groups.owner(groups.group_of_key(k), peers).0 as u64;
        keyed.unary(
            Exchange::new(route),
            &step.operator_name("route"),
            |_, _| {
                move |input, output| {
                    input.for_each(|cap, data| {
                        output.session(&cap).give_container(data);
                    });
                }
            },
        )
    }
}
