//! Keyed stateful steps: `count`, `sum`, `aggregate`, `reduce` and
//! `stateful_map`, each a function given to the one core operator
//! ([`rill_operators::StatefulStep`]). State is kept per key, checkpointed
//! with the job (see `--state-dir`), and bounded in memory by
//! `--state-cache-keys`.

use std::hash::Hash;
use std::ops::Add;

use rill_operators::{Emit, StatefulStep};
use rill_state::Table;
use serde::de::DeserializeOwned;
use serde::Serialize;
use timely::ExchangeData;

use crate::stream::Stream;
use crate::Error;

/// Keys of stateful steps: routed between workers and stored in checkpoints.
pub trait StateKey: ExchangeData + Hash + Eq + Clone + Serialize {}
impl<T: ExchangeData + Hash + Eq + Clone + Serialize> StateKey for T {}

/// Values kept as state: any serde type.
pub trait StateValue: Serialize + DeserializeOwned + 'static {}
impl<T: Serialize + DeserializeOwned + 'static> StateValue for T {}

/// A stream whose next stateful step emits each changed key once, with its
/// last value, when an epoch closes (see [`Stream::per_epoch`]).
pub struct PerEpoch<'s, K, V>(Stream<'s, K, V>);

impl<'s, K: StateKey, V: ExchangeData> Stream<'s, K, V> {
    /// The core of every keyed stateful step: for each record, in epoch
    /// order, on the worker owning its key, `logic(key, &mut state, value)`
    /// updates the key's state (`None` deletes it) and returns an output to
    /// emit as `(key, output)`, if any. `kind` names the kind of state in
    /// checkpoints (`"count"`, `"sum"`, ...): a step resumes only state of
    /// its own kind.
    pub fn stateful<S, O>(
        self,
        name: &str,
        kind: &str,
        emit: Emit,
        logic: impl FnMut(&K, &mut Option<S>, V) -> Option<O> + 'static,
    ) -> Stream<'s, K, O>
    where
        S: StateValue,
        O: Clone + 'static,
    {
        let step = self.step(name);
        let ctx = self.ctx.clone();
        let groups = ctx.key_groups();
        let capacity = ctx.shared.args.state_cache_keys;
        let table = match Table::new(name, kind, groups, ctx.checkpointer.clone(), capacity) {
            Ok(t) => t,
            Err(e) => {
                ctx.shared.fail(Error::state(name, e));
                Table::new(name, kind, groups, None, capacity).expect("a table without store")
            }
        };
        let fail_ctx = ctx.clone();
        let step_name = name.to_owned();
        let (inner, progress) =
            self.inner
                .stateful_step(&step, groups, table, emit, logic, move |e| {
                    fail_ctx.shared.fail(Error::state(&step_name, e))
                });
        self.progress.push(progress);
        Stream::new(inner, ctx, self.progress)
    }

    /// Makes the next stateful step emit each changed key once per epoch,
    /// with its last value, instead of after every record.
    pub fn per_epoch(self) -> PerEpoch<'s, K, V> {
        PerEpoch(self)
    }

    /// Counts records per key; emits the key's new count after each record.
    pub fn count(self, name: &str) -> Stream<'s, K, u64> {
        count(self, name, Emit::EveryUpdate)
    }

    /// Sums values per key; emits the key's new total after each record.
    pub fn sum(self, name: &str) -> Stream<'s, K, V>
    where
        V: Add<Output = V> + Clone + StateValue,
    {
        sum(self, name, Emit::EveryUpdate)
    }

    /// Folds values per key into an accumulator that starts as `init()`;
    /// emits the key's new accumulator after each record.
    pub fn aggregate<A>(
        self,
        name: &str,
        init: impl Fn() -> A + 'static,
        fold: impl FnMut(&mut A, V) + 'static,
    ) -> Stream<'s, K, A>
    where
        A: StateValue + Clone,
    {
        aggregate(self, name, Emit::EveryUpdate, init, fold)
    }

    /// Combines values per key with `combine(previous, value)`; the first
    /// value of a key is its start. Emits the key's new value after each record.
    pub fn reduce(self, name: &str, combine: impl FnMut(V, V) -> V + 'static) -> Stream<'s, K, V>
    where
        V: Clone + StateValue,
    {
        reduce(self, name, Emit::EveryUpdate, combine)
    }

    /// Maps each record with per-key state of any serde type:
    /// `logic(key, state, value)` returns the new state (`None` deletes it)
    /// and the output, emitted as `(key, output)`.
    pub fn stateful_map<S, O>(
        self,
        name: &str,
        logic: impl FnMut(&K, Option<S>, V) -> (Option<S>, O) + 'static,
    ) -> Stream<'s, K, O>
    where
        S: StateValue,
        O: Clone + 'static,
    {
        stateful_map(self, name, Emit::EveryUpdate, logic)
    }
}

impl<'s, K: StateKey, V: ExchangeData> PerEpoch<'s, K, V> {
    /// [`Stream::count`], emitting once per changed key per epoch.
    pub fn count(self, name: &str) -> Stream<'s, K, u64> {
        count(self.0, name, Emit::EpochClose)
    }

    /// [`Stream::sum`], emitting once per changed key per epoch.
    pub fn sum(self, name: &str) -> Stream<'s, K, V>
    where
        V: Add<Output = V> + Clone + StateValue,
    {
        sum(self.0, name, Emit::EpochClose)
    }

    /// [`Stream::aggregate`], emitting once per changed key per epoch.
    pub fn aggregate<A>(
        self,
        name: &str,
        init: impl Fn() -> A + 'static,
        fold: impl FnMut(&mut A, V) + 'static,
    ) -> Stream<'s, K, A>
    where
        A: StateValue + Clone,
    {
        aggregate(self.0, name, Emit::EpochClose, init, fold)
    }

    /// [`Stream::reduce`], emitting once per changed key per epoch.
    pub fn reduce(self, name: &str, combine: impl FnMut(V, V) -> V + 'static) -> Stream<'s, K, V>
    where
        V: Clone + StateValue,
    {
        reduce(self.0, name, Emit::EpochClose, combine)
    }

    /// [`Stream::stateful_map`], emitting each changed key's last output per epoch.
    pub fn stateful_map<S, O>(
        self,
        name: &str,
        logic: impl FnMut(&K, Option<S>, V) -> (Option<S>, O) + 'static,
    ) -> Stream<'s, K, O>
    where
        S: StateValue,
        O: Clone + 'static,
    {
        stateful_map(self.0, name, Emit::EpochClose, logic)
    }
}

fn count<'s, K: StateKey, V: ExchangeData>(
    s: Stream<'s, K, V>,
    name: &str,
    emit: Emit,
) -> Stream<'s, K, u64> {
    s.stateful(name, "count", emit, |_, n: &mut Option<u64>, _| {
        let c = n.unwrap_or(0) + 1;
        *n = Some(c);
        Some(c)
    })
}

fn sum<'s, K: StateKey, V>(s: Stream<'s, K, V>, name: &str, emit: Emit) -> Stream<'s, K, V>
where
    V: ExchangeData + Clone + Add<Output = V> + StateValue,
{
    s.stateful(name, "sum", emit, |_, total: &mut Option<V>, v: V| {
        let t = match total.take() {
            Some(t) => t + v,
            None => v,
        };
        *total = Some(t.clone());
        Some(t)
    })
}

fn aggregate<'s, K: StateKey, V: ExchangeData, A: StateValue + Clone>(
    s: Stream<'s, K, V>,
    name: &str,
    emit: Emit,
    init: impl Fn() -> A + 'static,
    mut fold: impl FnMut(&mut A, V) + 'static,
) -> Stream<'s, K, A> {
    s.stateful(name, "aggregate", emit, move |_, acc: &mut Option<A>, v| {
        let a = acc.get_or_insert_with(&init);
        fold(a, v);
        Some(a.clone())
    })
}

fn reduce<'s, K: StateKey, V: ExchangeData + Clone + StateValue>(
    s: Stream<'s, K, V>,
    name: &str,
    emit: Emit,
    mut combine: impl FnMut(V, V) -> V + 'static,
) -> Stream<'s, K, V> {
    s.stateful(name, "reduce", emit, move |_, acc: &mut Option<V>, v| {
        let r = match acc.take() {
            Some(prev) => combine(prev, v),
            None => v,
        };
        *acc = Some(r.clone());
        Some(r)
    })
}

fn stateful_map<'s, K: StateKey, V: ExchangeData, S: StateValue, O: Clone + 'static>(
    s: Stream<'s, K, V>,
    name: &str,
    emit: Emit,
    mut logic: impl FnMut(&K, Option<S>, V) -> (Option<S>, O) + 'static,
) -> Stream<'s, K, O> {
    s.stateful(
        name,
        "stateful_map",
        emit,
        move |k, state: &mut Option<S>, v| {
            let (next, out) = logic(k, state.take(), v);
            *state = next;
            Some(out)
        },
    )
}
