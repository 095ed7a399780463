//! `process2`: the keyed core over two inputs with the same key (joins).
//! Both inputs are routed by key group to the same workers and share the
//! step's states and timers.

use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Concatenate;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

use crate::keyed::{Context, States, Timer};
use crate::process::{Core, LogicResult, Process, ProcessStep, Processed};
use crate::watermark::Watermarks;
use crate::Step;

/// A record of either input of a two-input step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Either<A, B> {
    /// From the first (left) input.
    Left(A),
    /// From the second (right) input.
    Right(B),
}

/// The logic of a two-input keyed step.
pub trait Process2<K, V1, V2, O, D>: 'static {
    /// Handles a record of the first input.
    fn on_left(&mut self, cx: &mut Context<'_, K, O, D>, value: V1) -> LogicResult;

    /// Handles a record of the second input.
    fn on_right(&mut self, cx: &mut Context<'_, K, O, D>, value: V2) -> LogicResult;

    /// Handles a timer of the context's key that fired.
    fn on_timer(&mut self, cx: &mut Context<'_, K, O, D>, timer: Timer) -> LogicResult {
        let _ = (cx, timer);
        Ok(())
    }
}

struct Both<P>(P);

impl<K, V1, V2, O, D, P> Process<K, Either<V1, V2>, O, D> for Both<P>
where
    P: Process2<K, V1, V2, O, D>,
{
    fn on_record(&mut self, cx: &mut Context<'_, K, O, D>, value: Either<V1, V2>) -> LogicResult {
        match value {
            Either::Left(v) => self.0.on_left(cx, v),
            Either::Right(v) => self.0.on_right(cx, v),
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_, K, O, D>, timer: Timer) -> LogicResult {
        self.0.on_timer(cx, timer)
    }
}

/// Extension trait for the two-input keyed core.
pub trait Process2Step<'s, K, V1> {
    /// Runs `logic` over this stream (left) and `other` (right), keyed by
    /// the records' keys, with the states declared in `states`.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use rill_operators::{Context, Core, Emit, LogicResult, Process2, Process2Step, States, Step};
    /// use rill_state::KeyGroups;
    /// use timely::dataflow::operators::{Capture, ToStream};
    /// use timely::dataflow::operators::capture::Extract;
    ///
    /// // An inner join: each side keeps its values and meets the other's.
    /// struct Join(rill_operators::ListState<u32>, rill_operators::ListState<u32>);
    /// impl Process2<String, u32, u32, (u32, u32), ()> for Join {
    ///     fn on_left(&mut self, cx: &mut Context<'_, String, (u32, u32), ()>, v: u32) -> LogicResult {
    ///         cx.list(self.0).push(&v)?;
    ///         for r in cx.list(self.1).items()? {
    ///             cx.emit((v, r));
    ///         }
    ///         Ok(())
    ///     }
    ///     fn on_right(&mut self, cx: &mut Context<'_, String, (u32, u32), ()>, v: u32) -> LogicResult {
    ///         cx.list(self.1).push(&v)?;
    ///         for l in cx.list(self.0).items()? {
    ///             cx.emit((l, v));
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// let out = timely::example(|scope| {
    ///     let mut states = States::<String>::new();
    ///     let lefts = states.list::<u32>("lefts");
    ///     let rights = states.list::<u32>("rights");
    ///     let core = Core {
    ///         groups: KeyGroups::default(), checkpointer: None, capacity: 100,
    ///         kind: "join".into(), emit: Emit::EveryUpdate, routed: false,
    ///         on_error: Rc::new(|f| panic!("{f}")), first_epoch: 0,
    ///     };
    ///     let left = vec![("a".to_string(), 1u32, 0), ("b".into(), 5, 0)].to_stream(scope).container::<Vec<_>>();
    ///     let right = vec![("a".to_string(), 2u32, 0), ("a".into(), 3, 0)].to_stream(scope).container::<Vec<_>>();
    ///     left.process2_step(right, &Step::new("join"), core, states, None, Join(lefts, rights))
    ///         .output
    ///         .capture()
    /// });
    /// let mut out: Vec<(String, (u32, u32), u64)> = out.extract().into_iter().flat_map(|(_, d)| d).collect();
    /// out.sort();
    /// assert_eq!(out, vec![("a".to_string(), (1, 2), 0), ("a".to_string(), (1, 3), 0)]);
    /// ```
    #[allow(clippy::too_many_arguments)]
    fn process2_step<V2, O, D, P>(
        self,
        other: StreamVec<'s, u64, (K, V2, u64)>,
        step: &Step,
        core: Core,
        states: States<K>,
        watermarks: Option<Watermarks<'s>>,
        logic: P,
    ) -> Processed<'s, K, O, D>
    where
        V2: ExchangeData,
        O: Clone + 'static,
        D: Clone + 'static,
        P: Process2<K, V1, V2, O, D>;
}

impl<'s, K, V1> Process2Step<'s, K, V1> for StreamVec<'s, u64, (K, V1, u64)>
where
    K: ExchangeData + Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
    V1: ExchangeData,
{
    fn process2_step<V2, O, D, P>(
        self,
        other: StreamVec<'s, u64, (K, V2, u64)>,
        step: &Step,
        core: Core,
        states: States<K>,
        watermarks: Option<Watermarks<'s>>,
        logic: P,
    ) -> Processed<'s, K, O, D>
    where
        V2: ExchangeData,
        O: Clone + 'static,
        D: Clone + 'static,
        P: Process2<K, V1, V2, O, D>,
    {
        let scope = self.scope();
        let left = self.map(|(k, v, t)| (k, Either::Left(v), t));
        let right = other.map(|(k, v, t)| (k, Either::Right(v), t));
        let both: StreamVec<'s, u64, (K, Either<V1, V2>, u64)> = scope.concatenate([left, right]);
        both.process_step(step, core, states, watermarks, Both(logic))
    }
}
