//! `process`: the one keyed core under every stateful operator (Flink's
//! `KeyedProcessFunction`, Kafka Streams' Processor API).
//!
//! Records are routed to the worker owning their key's key group and
//! applied in epoch order: data of epoch `e` only once every earlier epoch
//! is closed, so the state staged for `e` reflects exactly the input up to
//! `e`. User logic gets a per-key [`Context`] with the step's declared
//! states, timers and outputs. When the input frontier passes `e`, the
//! core applies the watermarks sent in epochs up to `e`, fires the
//! event-time timers the watermark (the minimum over upstream workers)
//! reached and the epoch timers of `e`, in time order, stages every change
//! for the worker's checkpoint, and then releases its hold on its
//! data-less *progress* output.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::rc::Rc;

use rill_state::{KeyGroups, SharedCheckpointer};
use serde::de::DeserializeOwned;
use serde::Serialize;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

mod run;

use run::{
    advance, close_through, flush_sides, open_keyed, restore_watermark, Caps, Run, SideSession,
};

use crate::keyed::{Context, States, Timer};
use crate::watermark::{Upstream, Watermark, Watermarks};
use crate::{Emit, Failure, Step};

/// What user logic returns: an error stops the job, naming the step and key.
pub type LogicResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// The logic of a keyed step: called for each record, and for each timer
/// that fires, with the key's [`Context`].
pub trait Process<K, V, O, D>: 'static {
    /// Handles one record of the context's key.
    fn on_record(&mut self, cx: &mut Context<'_, K, O, D>, value: V) -> LogicResult;

    /// Handles a timer of the context's key that fired (removed once fired).
    fn on_timer(&mut self, cx: &mut Context<'_, K, O, D>, timer: Timer) -> LogicResult {
        let _ = (cx, timer);
        Ok(())
    }
}

/// A [`Process`] from a closure over records (for logic without timers).
pub struct FromFn<F>(pub F);

impl<K, V, O, D, F> Process<K, V, O, D> for FromFn<F>
where
    F: FnMut(&mut Context<'_, K, O, D>, V) -> LogicResult + 'static,
{
    fn on_record(&mut self, cx: &mut Context<'_, K, O, D>, value: V) -> LogicResult {
        (self.0)(cx, value)
    }
}

/// Where a keyed step runs: its key groups, its checkpointer (if state is
/// durable), its cache size, how it emits, and whom to tell if it fails.
#[derive(Clone)]
pub struct Core {
    /// The job's key groups.
    pub groups: KeyGroups,
    /// The worker's checkpointer, when state is durable.
    pub checkpointer: Option<SharedCheckpointer>,
    /// Entries per state kept in memory.
    pub capacity: usize,
    /// The step's kind, kept in checkpoints (`"count"`, `"process"`, ...).
    pub kind: String,
    /// When the main output is emitted.
    pub emit: Emit,
    /// The input is already on the workers owning its keys (after
    /// `key_by`): no second exchange.
    pub routed: bool,
    /// Told once when the step fails; the step then drops its input.
    pub on_error: Rc<dyn Fn(Failure)>,
    /// The first epoch of this run: nothing is staged before it.
    pub first_epoch: u64,
}

/// The streams of a keyed step.
pub struct Processed<'s, K, O, D> {
    /// The main output: `(key, output, event time)`.
    pub output: StreamVec<'s, u64, (K, O, u64)>,
    /// One stream per declared side output, in declaration order.
    pub sides: Vec<StreamVec<'s, u64, (K, D, u64)>>,
    /// No data; its frontier passes `e` once the state of `e` is staged.
    pub progress: StreamVec<'s, u64, ()>,
}

/// Input held back until every earlier epoch is closed.
type Stash<K, V> = BTreeMap<u64, Vec<Vec<(K, V, u64)>>>;

/// Extension trait for the keyed core.
pub trait ProcessStep<'s, K, V> {
    /// Runs `logic` over the stream, keyed by the records' keys, with the
    /// states declared in `states`. `watermarks` are the upstream
    /// workers' watermark messages, if the stream has event time.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use rill_operators::{Core, Emit, FromFn, ProcessStep, States, Step};
    /// use rill_state::KeyGroups;
    /// use timely::dataflow::operators::{Capture, ToStream};
    /// use timely::dataflow::operators::capture::Extract;
    ///
    /// let out = timely::example(|scope| {
    ///     let mut states = States::<String>::new();
    ///     let count = states.value::<u64>("count");
    ///     let core = Core {
    ///         groups: KeyGroups::default(), checkpointer: None, capacity: 100,
    ///         kind: "count".into(), emit: Emit::EveryUpdate, routed: false,
    ///         on_error: Rc::new(|f| panic!("{f}")), first_epoch: 0,
    ///     };
    ///     let logic = FromFn(move |cx: &mut rill_operators::Context<'_, String, u64, ()>, (): ()| {
    ///         let n = cx.value(count).update(|n| { let c = n.unwrap_or(0) + 1; *n = Some(c); c })?;
    ///         cx.emit(n);
    ///         Ok(())
    ///     });
    ///     ["a", "b", "a"].map(|w| (w.to_string(), (), 0)).to_stream(scope).container::<Vec<_>>()
    ///         .process_step(&Step::new("count"), core, states, None, logic)
    ///         .output
    ///         .capture()
    /// });
    /// let mut out: Vec<(String, u64, u64)> = out.extract().into_iter().flat_map(|(_, d)| d).collect();
    /// out.sort();
    /// assert_eq!(out, vec![("a".into(), 1, 0), ("a".into(), 2, 0), ("b".into(), 1, 0)]);
    /// ```
    fn process_step<O, D, P>(
        self,
        step: &Step,
        core: Core,
        states: States<K>,
        watermarks: Option<Watermarks<'s>>,
        logic: P,
    ) -> Processed<'s, K, O, D>
    where
        O: Clone + 'static,
        D: Clone + 'static,
        P: Process<K, V, O, D>;
}

impl<'s, K, V> ProcessStep<'s, K, V> for StreamVec<'s, u64, (K, V, u64)>
where
    K: ExchangeData + Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
    V: ExchangeData,
{
    fn process_step<O, D, P>(
        self,
        step: &Step,
        core: Core,
        states: States<K>,
        watermarks: Option<Watermarks<'s>>,
        logic: P,
    ) -> Processed<'s, K, O, D>
    where
        O: Clone + 'static,
        D: Clone + 'static,
        P: Process<K, V, O, D>,
    {
        let scope = self.scope();
        let peers = scope.peers();
        let me = scope.index();
        let groups = core.groups;
        let routed = core.routed;
        let route = move |(k, _, _): &(K, V, u64)| {
            if routed {
                me as u64
            } else {
                groups.owner(groups.group_of_key(k), peers).0 as u64
            }
        };
        let step = step.clone();
        let on_error = core.on_error.clone();
        let keyed = open_keyed(&step, &core, states.specs.clone(), states.values, me, peers);
        let has_marks = watermarks.is_some();
        let keyed = keyed.and_then(|mut k| {
            let restored = if has_marks {
                restore_watermark(&mut k, step.name(), me)?
            } else {
                None
            };
            Ok((k, restored))
        });
        let keyed = match keyed {
            Ok(k) => Some(k),
            Err(f) => {
                on_error(f);
                None
            }
        };
        let mut builder = OperatorBuilder::new(step.operator_name("process"), scope);
        let mut input = builder.new_input(self, Exchange::new(route));
        let senders = watermarks.as_ref().map_or(0, |w| w.senders);
        let mut wm_input = watermarks.map(|w| builder.new_input(w.stream.broadcast(), Pipeline));
        let (output, stream) = builder.new_output();
        let mut output = OutputBuilder::from(output);
        let mut side_outputs = Vec::new();
        let mut side_streams = Vec::new();
        for _ in &states.sides {
            let (o, s) = builder.new_output();
            side_outputs.push(OutputBuilder::from(o));
            side_streams.push(s);
        }
        let (_progress_output, progress) = builder.new_output::<Vec<()>>();
        let timers = states.timers;
        let nsides = side_outputs.len();

        let first_epoch = core.first_epoch;
        builder.build(move |mut caps| {
            // One capability per data output, then the progress output's:
            // all held at the epoch being processed.
            advance(&mut caps, first_epoch);
            let mut held: Option<Caps> = Some(caps);
            let mut run = keyed.map(|(keyed, restored)| Run {
                step: step.clone(),
                keyed,
                logic,
                emit: core.emit,
                timers,
                upstream: Upstream::new(senders, restored),
                watermark: restored,
                worker: me,
                out: Vec::new(),
                sides: (0..nsides).map(|_| Vec::new()).collect(),
                last: HashMap::new(),
            });
            let mut stash: Stash<K, V> = BTreeMap::new();
            let mut marks: BTreeMap<u64, Vec<Watermark>> = BTreeMap::new();
            // The epoch being processed; everything before it is closed.
            let mut cur = first_epoch;
            move |frontiers| {
                input.for_each(|cap, data| match cap.least().copied() {
                    Some(t) if run.is_some() => {
                        stash.entry(t).or_default().push(std::mem::take(data))
                    }
                    _ => data.clear(),
                });
                if let Some(w) = wm_input.as_mut() {
                    w.for_each(|cap, data| match cap.least().copied() {
                        Some(t) if run.is_some() => marks.entry(t).or_default().append(data),
                        _ => data.clear(),
                    });
                }
                let (Some(r), Some(caps)) = (run.as_mut(), held.as_mut()) else {
                    held = None;
                    return;
                };
                // The least epoch any input may still send.
                let low = frontiers
                    .iter()
                    .filter_map(|f| f.frontier().first().copied())
                    .min();
                let mut outputs = output.activate();
                let mut sides: Vec<_> = side_outputs.iter_mut().map(|o| o.activate()).collect();
                let mut result = Ok(());
                // Data of epoch `t` is applied once every earlier epoch is
                // closed; the epochs before it close first.
                while let Some((&t, _)) = stash.first_key_value() {
                    if low.is_some_and(|l| l < t) || result.is_err() {
                        break;
                    }
                    let (_, batches) = stash.pop_first().expect("just seen");
                    let t = t.max(cur);
                    if t > cur {
                        result =
                            close_through(r, t - 1, caps, &mut marks, &mut outputs, &mut sides);
                        advance(caps, t);
                        cur = t;
                    }
                    for mut batch in batches {
                        let n = batch.len() as u64;
                        let before = r.out.len();
                        for (k, v, time) in batch.drain(..) {
                            if result.is_ok() {
                                r.keyed.epoch = t;
                                result = r.record(k, v, time);
                            }
                        }
                        let produced = (r.out.len() - before) as u64;
                        if !r.out.is_empty() {
                            outputs.give(&caps[0], &mut r.out);
                            r.out.clear();
                        }
                        flush_sides(r, caps, &mut sides);
                        step.record(n, produced);
                    }
                }
                // Every epoch before `low` is closed (all of them once the
                // input ended).
                let through = match low {
                    Some(l) if l > cur => Some(l - 1),
                    Some(_) => None,
                    None => Some(cur.max(marks.keys().next_back().copied().unwrap_or(0))),
                };
                if let (Some(e), true) = (through, result.is_ok()) {
                    result = close_through(r, e, caps, &mut marks, &mut outputs, &mut sides);
                }
                drop(outputs);
                drop(sides);
                if let Err(f) = result {
                    (core.on_error)(f);
                    run = None;
                    stash.clear();
                    held = None;
                    return;
                }
                match low {
                    Some(l) if l > cur => {
                        advance(caps, l);
                        cur = l;
                    }
                    Some(_) => {}
                    None => held = None,
                }
            }
        });
        Processed {
            output: stream,
            sides: side_streams,
            progress,
        }
    }
}
