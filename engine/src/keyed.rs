//! Keyed stateful steps. [`Stream::process`] (and [`Stream::process_with`],
//! [`Stream::process2`]) is the keyed core: per-key value, list and map
//! state, timers and side outputs. `count`, `sum`, `aggregate`, `reduce`
//! and `stateful_map` are a few lines each over it, with one value state.
//! State is kept per key, checkpointed with the job (see `--state-dir`),
//! and bounded in memory by `--state-cache-keys`.

use std::hash::Hash;
use std::ops::Add;
use std::rc::Rc;

use rill_operators::{
    Context, Core, Emit, FromFn, LogicResult, Process, Process2, Process2Step, ProcessStep,
    Processed, States,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use timely::ExchangeData;

mod aggregations;

use crate::stream::{Meta, Stream};
use crate::Error;
pub use aggregations::PerEpoch;
use aggregations::{aggregate, count, reduce, stateful_map, sum};

/// Keys of stateful steps: routed between workers, stored in checkpoints,
/// and debug-printed in error messages.
pub trait StateKey:
    ExchangeData + Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug
{
}
impl<T: ExchangeData + Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug> StateKey
    for T
{
}

/// Values kept as state: any serde type.
pub trait StateValue: Serialize + DeserializeOwned + 'static {}
impl<T: Serialize + DeserializeOwned + 'static> StateValue for T {}

/// The outputs of a keyed step built with [`Stream::process_with`]: its
/// main output and one stream per side output, in declaration order.
pub struct Outputs<'s, K, O, D> {
    /// The main output.
    pub output: Stream<'s, K, O>,
    /// The side outputs ([`States::side_output`]).
    pub sides: Vec<Stream<'s, K, D>>,
}

impl<'s, K: StateKey, V: ExchangeData> Stream<'s, K, V> {
    fn core(&self, kind: &str, emit: Emit) -> Core {
        let ctx = self.ctx.clone();
        Core {
            groups: ctx.key_groups(),
            checkpointer: ctx.checkpointer.clone(),
            capacity: ctx.shared.args.state_cache_keys,
            kind: kind.to_owned(),
            emit,
            routed: self.routed,
            on_error: Rc::new(move |f| ctx.shared.fail(Error::Step(Box::new(f)))),
            first_epoch: self.ctx.start_epoch,
        }
    }
}

/// A keyed step's streams, with the meta of its input.
fn outputs<'s, K: 'static, O: 'static, D: 'static>(
    meta: Meta<'s>,
    processed: Processed<'s, K, O, D>,
) -> Outputs<'s, K, O, D> {
    meta.progress.push(processed.progress);
    // The keys are unchanged and on their owners.
    Outputs {
        sides: (processed.sides.into_iter())
            .map(|s| meta.clone().rekeyed(s, true))
            .collect(),
        output: meta.rekeyed(processed.output, true),
    }
}

impl<'s, K: StateKey, V: ExchangeData> Stream<'s, K, V> {
    /// The keyed core with a full [`Process`]: `on_record` for each record
    /// and `on_timer` for each timer that fires, on the worker owning the
    /// key, with the states declared in `states` (named: a resumed job
    /// checks them against its checkpoint). User logic may return an
    /// error; an error or a panic stops the job, naming the step and key.
    ///
    /// ```
    /// use rill::{Context, LogicResult, Process, States, Timer};
    ///
    /// // Emits each key's count once the epoch closes, then forgets it.
    /// struct CountPerEpoch(rill::ValueState<u64>, rill::TimerState);
    /// impl Process<u32, u32, u64, ()> for CountPerEpoch {
    ///     fn on_record(&mut self, cx: &mut Context<'_, u32, u64, ()>, _: u32) -> LogicResult {
    ///         let epoch = cx.epoch();
    ///         cx.value(self.0).update(|n| *n = Some(n.unwrap_or(0) + 1))?;
    ///         cx.timers(self.1).set_epoch(epoch)?;
    ///         Ok(())
    ///     }
    ///     fn on_timer(&mut self, cx: &mut Context<'_, u32, u64, ()>, _: Timer) -> LogicResult {
    ///         if let Some(n) = cx.value(self.0).get()? {
    ///             cx.emit(n);
    ///         }
    ///         cx.value(self.0).clear()?;
    ///         Ok(())
    ///     }
    /// }
    /// let out = rill::testing::run(2, |flow| {
    ///     let mut states = States::new();
    ///     let logic = CountPerEpoch(states.value("count"), states.timers());
    ///     flow.source_iter("numbers", 0..100u32)
    ///         .key_by("parity", |x| x % 2)
    ///         .process_with("count", states, logic)
    ///         .output
    /// })
    /// .unwrap();
    /// let total: u64 = out.iter().map(|(_, n)| n).sum();
    /// assert_eq!(total, 100);
    /// ```
    pub fn process_with<O, D, P>(
        self,
        name: &str,
        states: States<K>,
        logic: P,
    ) -> Outputs<'s, K, O, D>
    where
        O: Clone + 'static,
        D: Clone + 'static,
        P: Process<K, V, O, D>,
    {
        self.core_step(name, "process", Emit::EveryUpdate, states, logic)
    }

    pub(crate) fn core_step<O, D, P>(
        self,
        name: &str,
        kind: &str,
        emit: Emit,
        states: States<K>,
        logic: P,
    ) -> Outputs<'s, K, O, D>
    where
        O: Clone + 'static,
        D: Clone + 'static,
        P: Process<K, V, O, D>,
    {
        let step = self.step(name);
        let core = self.core(kind, emit);
        let (inner, meta) = self.split();
        let processed = inner.process_step(&step, core, states, meta.watermarks.clone(), logic);
        outputs(meta, processed)
    }

    /// The keyed core with a closure over records (no timers, no side
    /// outputs): `logic(cx, value)` reads and writes the key's states
    /// through `cx` and emits with [`Context::emit`].
    ///
    /// ```
    /// use rill::States;
    ///
    /// // Keeps each key's distinct values in a map, emitting new ones.
    /// let out = rill::testing::run(2, |flow| {
    ///     let mut states = States::new();
    ///     let seen = states.map::<u64, ()>("seen");
    ///     flow.source_iter("numbers", [1u64, 2, 1, 3, 2, 1])
    ///         .key_by("all", |_| 0u8)
    ///         .process("distinct", states, move |cx, v: u64| {
    ///             if cx.map(seen).get(&v)?.is_none() {
    ///                 cx.map(seen).put(&v, &())?;
    ///                 cx.emit(v);
    ///             }
    ///             Ok(())
    ///         })
    /// })
    /// .unwrap();
    /// let mut values: Vec<u64> = out.into_iter().map(|(_, v)| v).collect();
    /// values.sort();
    /// assert_eq!(values, vec![1, 2, 3]);
    /// ```
    pub fn process<O>(
        self,
        name: &str,
        states: States<K>,
        logic: impl FnMut(&mut Context<'_, K, O, ()>, V) -> LogicResult + 'static,
    ) -> Stream<'s, K, O>
    where
        O: Clone + 'static,
    {
        self.process_with(name, states, FromFn(logic)).output
    }

    /// The keyed core over two inputs with the same key (joins): records of
    /// this stream go to `on_left`, those of `other` to `on_right`, on the
    /// worker owning their key, sharing the states declared in `states`.
    pub fn process2<V2, O, D, P>(
        self,
        name: &str,
        other: Stream<'s, K, V2>,
        states: States<K>,
        logic: P,
    ) -> Outputs<'s, K, O, D>
    where
        V2: ExchangeData,
        O: Clone + 'static,
        D: Clone + 'static,
        P: Process2<K, V, V2, O, D>,
    {
        let step = self.step(name);
        let mut core = self.core("process2", Emit::EveryUpdate);
        core.routed = false;
        let (inner, mut meta) = self.split();
        // Event time over both inputs: the least of their watermarks.
        meta.watermarks = match (meta.watermarks.take(), other.watermarks) {
            (Some(a), Some(b)) => Some(a.merge(b)),
            _ => None,
        };
        let watermarks = meta.watermarks.clone();
        let processed = inner.process2_step(other.inner, &step, core, states, watermarks, logic);
        outputs(meta, processed)
    }

    /// The core of `count`, `sum`, `aggregate`, `reduce` and
    /// `stateful_map`: one value state, `"value"`; `logic(key, &mut
    /// state, value)` updates the key's state (`None` deletes it) and
    /// returns an output to emit, if any. `kind` names the kind of state in
    /// checkpoints: a step resumes only state of its own kind.
    fn stateful<S, O>(
        self,
        name: &str,
        kind: &str,
        emit: Emit,
        mut logic: impl FnMut(&K, &mut Option<S>, V) -> Option<O> + 'static,
    ) -> Stream<'s, K, O>
    where
        S: StateValue,
        O: Clone + 'static,
    {
        let mut states = States::new();
        let value = states.value::<S>("value");
        let logic = FromFn(move |cx: &mut Context<'_, K, O, ()>, v: V| {
            if let Some(out) = cx.value(value).update_keyed(|k, s| logic(k, s, v))? {
                cx.emit(out);
            }
            Ok(())
        });
        self.core_step(name, kind, emit, states, logic).output
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
