//! `stateful`: the one keyed, checkpointed operator. `count`, `sum`,
//! `aggregate`, `reduce` and `stateful_map` are each a function handed to it.
//!
//! Records are routed to the worker owning their key group. Data of an
//! epoch is applied only once every earlier epoch is closed, so the state
//! staged for epoch `e` reflects exactly the input of epochs up to `e`.
//! When the input frontier passes `e`, the operator stages the keys changed
//! in `e` into the worker's checkpoint batch, then releases its hold on its
//! second, data-less *progress* output: the checkpoint writer downstream of
//! every progress output writes the batch once all of them passed `e`.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::Serialize;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

use rill_state::{KeyGroups, StoreError, Table};

use crate::Step;

/// When a stateful step emits a key's new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Emit {
    /// After every input record: a changelog, like a Kafka Streams KTable.
    #[default]
    EveryUpdate,
    /// Once per changed key, with its last value, when the epoch closes.
    EpochClose,
}

/// Extension trait for the stateful core operator.
pub trait StatefulStep<'s, K, V> {
    /// Applies `logic(key, &mut state, value)` to each record in epoch order
    /// on the worker owning the key's group, with the key's state from
    /// `table`; setting the state to `None` deletes it. `logic` returns the
    /// output for the record, if any, emitted as `(key, output)` as `emit`
    /// says. Store errors go to `on_error`, after which input is dropped.
    ///
    /// Returns the output stream and the progress stream (no data; its
    /// frontier passes `e` once the state of epoch `e` is staged).
    ///
    /// ```
    /// use rill_operators::{Emit, StatefulStep, Step};
    /// use rill_state::{KeyGroups, Table};
    /// use timely::dataflow::operators::{Capture, ToStream};
    /// use timely::dataflow::operators::capture::Extract;
    ///
    /// let out = timely::example(|scope| {
    ///     let table = Table::<String, u64>::new("count", "count", KeyGroups::default(), None, 100).unwrap();
    ///     let (counts, _progress) = ["a", "b", "a"]
    ///         .map(|w| (w.to_string(), ()))
    ///         .to_stream(scope)
    ///         .container::<Vec<_>>()
    ///         .stateful_step(&Step::new("count"), KeyGroups::default(), table, Emit::EveryUpdate,
    ///             |_, n: &mut Option<u64>, ()| { let c = n.unwrap_or(0) + 1; *n = Some(c); Some(c) },
    ///             |e| panic!("{e}"));
    ///     counts.capture()
    /// });
    /// let mut out: Vec<(String, u64)> = out.extract().into_iter().flat_map(|(_, d)| d).collect();
    /// out.sort();
    /// assert_eq!(out, vec![("a".into(), 1), ("a".into(), 2), ("b".into(), 1)]);
    /// ```
    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    fn stateful_step<S, O, F, E>(
        self,
        step: &Step,
        groups: KeyGroups,
        table: Table<K, S>,
        emit: Emit,
        logic: F,
        on_error: E,
    ) -> (StreamVec<'s, u64, (K, O)>, StreamVec<'s, u64, ()>)
    where
        S: Serialize + DeserializeOwned + 'static,
        O: Clone + 'static,
        F: FnMut(&K, &mut Option<S>, V) -> Option<O> + 'static,
        E: Fn(StoreError) + 'static;
}

/// Input held back until every earlier epoch is closed: epoch →
/// (capability, batches).
type Stash<K, V> = BTreeMap<u64, (Capability<u64>, Vec<Vec<(K, V)>>)>;

struct Open<K, O> {
    epoch: u64,
    cap: Capability<u64>,
    last: HashMap<K, O>,
}

impl<'s, K, V> StatefulStep<'s, K, V> for StreamVec<'s, u64, (K, V)>
where
    K: ExchangeData + Hash + Eq + Clone + Serialize,
    V: ExchangeData,
{
    fn stateful_step<S, O, F, E>(
        self,
        step: &Step,
        groups: KeyGroups,
        mut table: Table<K, S>,
        emit: Emit,
        mut logic: F,
        on_error: E,
    ) -> (StreamVec<'s, u64, (K, O)>, StreamVec<'s, u64, ()>)
    where
        S: Serialize + DeserializeOwned + 'static,
        O: Clone + 'static,
        F: FnMut(&K, &mut Option<S>, V) -> Option<O> + 'static,
        E: Fn(StoreError) + 'static,
    {
        let peers = self.scope().peers();
        let route = move |(k, _): &(K, V)| groups.owner(groups.group_of_key(k), peers).0 as u64;
        let step = step.clone();
        let mut builder = OperatorBuilder::new(step.operator_name("state"), self.scope());
        let mut input = builder.new_input(self, Exchange::new(route));
        let (output, stream) = builder.new_output();
        let mut output = OutputBuilder::from(output);
        let (_progress_output, progress) = builder.new_output::<Vec<()>>();

        builder.build(move |mut caps| {
            let mut hold: Option<Capability<u64>> = caps.pop();
            drop(caps);
            let mut stash: Stash<K, V> = BTreeMap::new();
            let mut open: Option<Open<K, O>> = None;
            let mut failed = false;
            let mut out_buf: Vec<(K, O)> = Vec::new();
            move |frontiers| {
                let frontier = &frontiers[0];
                let mut out = output.activate();
                input.for_each(|cap, data| {
                    if failed {
                        data.clear();
                        return;
                    }
                    if let Some(c) = cap.retain_least(0) {
                        let t = *c.time();
                        stash
                            .entry(t)
                            .or_insert_with(|| (c, Vec::new()))
                            .1
                            .push(std::mem::take(data));
                    }
                });
                let close =
                    |open: Open<K, O>,
                     table: &mut Table<K, S>,
                     out: &mut timely::dataflow::operators::generic::OutputBuilderSession<
                        '_,
                        u64,
                        _,
                    >|
                     -> Result<(), StoreError> {
                        if !open.last.is_empty() {
                            let mut session = out.session(&open.cap);
                            for pair in open.last {
                                session.give(pair);
                            }
                        }
                        table.stage(open.epoch)
                    };
                while !failed {
                    let Some((&t, _)) = stash.first_key_value() else {
                        break;
                    };
                    if frontier.less_than(&t) {
                        break;
                    }
                    let (_, (cap, batches)) = stash.pop_first().expect("just seen");
                    if let Some(prev) = open.take() {
                        if prev.epoch < t {
                            if let Err(e) = close(prev, &mut table, &mut out) {
                                failed = true;
                                on_error(e);
                                break;
                            }
                        } else {
                            open = Some(prev);
                        }
                    }
                    let current = open.get_or_insert_with(|| Open {
                        epoch: t,
                        cap: cap.clone(),
                        last: HashMap::new(),
                    });
                    for mut batch in batches {
                        let n = batch.len() as u64;
                        let mut produced = 0;
                        if emit == Emit::EveryUpdate {
                            // One allocation per batch: the buffer left
                            // after `give_container` has no capacity, and
                            // growing it record by record reallocates ~10
                            // times per batch, contending for the
                            // allocator's lock with threads freeing these
                            // buffers (the next step, the checkpoint writer).
                            out_buf.reserve(batch.len());
                        }
                        for (k, v) in batch.drain(..) {
                            let result =
                                table.update(k, t, |k, s| logic(k, s, v).map(|o| (k.clone(), o)));
                            match result {
                                Ok(Some((k, o))) => {
                                    produced += 1;
                                    match emit {
                                        Emit::EveryUpdate => out_buf.push((k, o)),
                                        Emit::EpochClose => {
                                            current.last.insert(k, o);
                                        }
                                    }
                                }
                                Ok(None) => {}
                                Err(e) => {
                                    failed = true;
                                    on_error(e);
                                    break;
                                }
                            }
                        }
                        if !out_buf.is_empty() {
                            out.session(&cap).give_container(&mut out_buf);
                            out_buf.clear();
                        }
                        step.record(n, produced);
                    }
                }
                if let Some(current) = open.take() {
                    if !failed && !frontier.less_equal(&current.epoch) {
                        if let Err(e) = close(current, &mut table, &mut out) {
                            failed = true;
                            on_error(e);
                        }
                    } else {
                        open = Some(current);
                    }
                }
                if failed {
                    stash.clear();
                    open = None;
                    hold = None;
                    return;
                }
                let low = frontier.frontier().first().copied();
                let staged_through = open.as_ref().map(|o| o.epoch);
                match (low, staged_through, hold.as_mut()) {
                    (_, Some(e), Some(h)) => h.downgrade(&e.max(*h.time())),
                    (Some(l), None, Some(h)) => h.downgrade(&l.max(*h.time())),
                    (None, None, _) => hold = None,
                    _ => {}
                }
            }
        });
        (stream, progress)
    }
}
