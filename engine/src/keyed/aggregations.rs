//! The aggregations over the keyed core with one value state (`count`,
//! `sum`, `aggregate`, `reduce`, `stateful_map`), and [`PerEpoch`], their
//! once-per-epoch form.

use std::ops::Add;

use rill_operators::Emit;
use timely::ExchangeData;

use super::{StateKey, StateValue};
use crate::stream::Stream;

/// A stream whose next stateful step emits each changed key once, with its
/// last value, when an epoch closes (see [`Stream::per_epoch`]).
pub struct PerEpoch<'s, K, V>(pub(super) Stream<'s, K, V>);

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

pub(super) fn count<'s, K: StateKey, V: ExchangeData>(
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

pub(super) fn sum<'s, K: StateKey, V>(
    s: Stream<'s, K, V>,
    name: &str,
    emit: Emit,
) -> Stream<'s, K, V>
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

pub(super) fn aggregate<'s, K: StateKey, V: ExchangeData, A: StateValue + Clone>(
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

pub(super) fn reduce<'s, K: StateKey, V: ExchangeData + Clone + StateValue>(
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

pub(super) fn stateful_map<'s, K: StateKey, V: ExchangeData, S: StateValue, O: Clone + 'static>(
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
