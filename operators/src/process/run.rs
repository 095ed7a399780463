//! One step's running part on one worker ([`Run`]): calling user logic
//! for records and due timers, and closing epochs (watermarks, timers,
//! staging); plus opening the step's state.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::panic::{catch_unwind, AssertUnwindSafe};

use rill_state::codec::describe_key;
use rill_state::{layout, StepMeta};
use serde::de::DeserializeOwned;
use serde::Serialize;
use timely::dataflow::operators::Capability;

use super::{Core, LogicResult, Process};
use crate::keyed::{Context, Keyed, TableArgs, Timer, TimerKind};
use crate::watermark::{Upstream, Watermark};
use crate::{Emit, Failure, Step};

/// The capabilities held: one per data output, then the progress output's.
pub(super) type Caps = Vec<Capability<u64>>;

/// The message of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// What one call of user logic came to: `None` when it succeeded, else
/// its error's message and whether it panicked.
fn outcome(result: std::thread::Result<LogicResult>) -> Option<(String, bool)> {
    match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some((e.to_string(), false)),
        Err(payload) => Some((panic_message(payload.as_ref()), true)),
    }
}

/// The running state of one step on one worker, besides its input.
pub(super) struct Run<K, O, D, P> {
    pub(super) step: Step,
    pub(super) keyed: Keyed<K>,
    pub(super) logic: P,
    pub(super) emit: Emit,
    pub(super) timers: bool,
    /// The senders' watermarks.
    pub(super) upstream: Upstream,
    pub(super) watermark: Option<u64>,
    /// This worker's index (its watermark's entry).
    pub(super) worker: usize,
    pub(super) out: Vec<(K, O, u64)>,
    pub(super) sides: Vec<Vec<(K, D, u64)>>,
    pub(super) last: HashMap<K, (O, u64)>,
}

impl<K, O, D, P> Run<K, O, D, P>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
    O: Clone + 'static,
    D: Clone + 'static,
{
    fn context<'a>(&'a mut self, key: &'a K, time: u64) -> (Context<'a, K, O, D>, &'a mut P) {
        let cx = Context {
            key,
            epoch: self.keyed.epoch,
            watermark: self.watermark,
            time,
            keyed: &mut self.keyed,
            out: &mut self.out,
            sides: &mut self.sides,
        };
        (cx, &mut self.logic)
    }

    fn failed(&self, key: &K, (message, panicked): (String, bool)) -> Failure {
        Failure::logic(self.step.name(), describe_key(key), message, panicked)
    }

    #[inline]
    pub(super) fn record<V>(&mut self, key: K, value: V, time: u64) -> Result<(), Failure>
    where
        P: Process<K, V, O, D>,
    {
        let mark = self.out.len();
        let result = {
            let (mut cx, logic) = self.context(&key, time);
            catch_unwind(AssertUnwindSafe(|| logic.on_record(&mut cx, value)))
        };
        if let Some(failure) = outcome(result) {
            return Err(self.failed(&key, failure));
        }
        if self.emit == Emit::EpochClose {
            for (k, o, t) in self.out.drain(mark..) {
                self.last.insert(k, (o, t));
            }
        }
        Ok(())
    }

    /// Fires the timers due at the close of epoch `epoch`.
    fn fire<V>(&mut self, epoch: u64) -> Result<(), Failure>
    where
        P: Process<K, V, O, D>,
    {
        if !self.timers {
            return Ok(());
        }
        let name = self.step.name().to_owned();
        let clocks = [
            (TimerKind::EventTime, self.watermark),
            (TimerKind::Epoch, Some(epoch)),
        ];
        for (kind, through) in clocks {
            let Some(through) = through else { continue };
            // Timers set while firing, at or before `through`, fire too.
            loop {
                let due = self
                    .keyed
                    .take_due(kind, through)
                    .map_err(|e| Failure::store(&name, None, e))?;
                if due.is_empty() {
                    break;
                }
                for (key, time) in due {
                    let mark = self.out.len();
                    let at = match kind {
                        TimerKind::EventTime => time,
                        TimerKind::Epoch => self.watermark.unwrap_or(0),
                    };
                    let result = {
                        let (mut cx, logic) = self.context(&key, at);
                        let timer = Timer { kind, time };
                        catch_unwind(AssertUnwindSafe(|| logic.on_timer(&mut cx, timer)))
                    };
                    if let Some(failure) = outcome(result) {
                        return Err(self.failed(&key, failure));
                    }
                    if self.emit == Emit::EpochClose {
                        for (k, o, t) in self.out.drain(mark..) {
                            self.last.insert(k, (o, t));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Moves every held capability on to `epoch`.
pub(super) fn advance(caps: &mut Caps, epoch: u64) {
    for c in caps.iter_mut() {
        if *c.time() < epoch {
            c.downgrade(&epoch);
        }
    }
}

/// Closes every epoch up to `epoch` (held capabilities are at or before
/// it), one at a time where watermarks came, so that each watermark's
/// timers fire before the next one's (see [`close`]).
pub(super) fn close_through<K, V, O, D, P, M, S>(
    r: &mut Run<K, O, D, P>,
    epoch: u64,
    caps: &mut Caps,
    marks: &mut BTreeMap<u64, Vec<Watermark>>,
    outputs: &mut M,
    sides: &mut [S],
) -> Result<(), Failure>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
    O: Clone + 'static,
    D: Clone + 'static,
    P: Process<K, V, O, D>,
    M: SideSession<(K, O, u64)>,
    S: SideSession<(K, D, u64)>,
{
    let earlier: Vec<u64> = marks.range(..epoch).map(|(e, _)| *e).collect();
    for e in earlier {
        advance(caps, e);
        close(r, e, caps, marks, outputs, sides)?;
    }
    advance(caps, epoch);
    close(r, epoch, caps, marks, outputs, sides)
}

/// Emits the side outputs buffered so far at the epoch's capabilities.
pub(super) fn flush_sides<K, O, D, P, S>(r: &mut Run<K, O, D, P>, caps: &Caps, sides: &mut [S])
where
    S: SideSession<(K, D, u64)>,
{
    for (i, buf) in r.sides.iter_mut().enumerate() {
        if !buf.is_empty() {
            sides[i].give(&caps[i + 1], buf);
            buf.clear();
        }
    }
}

/// An activated output that takes a buffer of records at a capability.
pub(super) trait SideSession<T> {
    fn give(&mut self, cap: &Capability<u64>, buf: &mut Vec<T>);
}

impl<T: 'static> SideSession<T>
    for timely::dataflow::operators::generic::OutputBuilderSession<
        '_,
        u64,
        timely::container::CapacityContainerBuilder<Vec<T>>,
    >
{
    fn give(&mut self, cap: &Capability<u64>, buf: &mut Vec<T>) {
        self.session(cap).give_container(buf);
    }
}

/// Closes epoch `epoch`: applies its watermarks, fires the timers due,
/// emits what waits for the close, and stages the epoch's changes.
fn close<K, V, O, D, P, M, S>(
    r: &mut Run<K, O, D, P>,
    epoch: u64,
    caps: &Caps,
    marks: &mut BTreeMap<u64, Vec<Watermark>>,
    outputs: &mut M,
    sides: &mut [S],
) -> Result<(), Failure>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
    O: Clone + 'static,
    D: Clone + 'static,
    P: Process<K, V, O, D>,
    M: SideSession<(K, O, u64)>,
    S: SideSession<(K, D, u64)>,
{
    let later = marks.split_off(&(epoch + 1));
    let mut moved = false;
    for (_, sent) in std::mem::replace(marks, later) {
        for (sender, mark) in sent {
            moved |= r.upstream.apply(sender, mark).is_some();
        }
    }
    {
        if moved {
            let w = r.upstream.watermark();
            r.watermark = w;
            let entry = layout::watermark_entry(r.keyed.step_id, r.worker as u32);
            let name = r.step.name();
            r.keyed
                .entries
                .put(&entry, |v| rill_state::codec::encode_into(&w, v))
                .map_err(|e| Failure::store(name, None, e))?;
        }
    }
    r.keyed.epoch = epoch;
    r.fire::<V>(epoch)?;
    r.out.extend(r.last.drain().map(|(k, (o, t))| (k, o, t)));
    if !r.out.is_empty() {
        outputs.give(&caps[0], &mut r.out);
        r.out.clear();
    }
    flush_sides(r, caps, sides);
    let name = r.step.name().to_owned();
    r.keyed
        .stage(epoch)
        .map_err(|e| Failure::store(&name, None, e))
}

/// The watermark this worker's part of the step reached by its last
/// checkpoint, if any.
pub(super) fn restore_watermark<K>(
    keyed: &mut Keyed<K>,
    step: &str,
    me: usize,
) -> Result<Option<u64>, Failure>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
{
    let entry = layout::watermark_entry(keyed.step_id, me as u32);
    let stored = keyed
        .entries
        .get(&entry, rill_state::codec::decode::<Option<u64>>)
        .map_err(|e| Failure::store(step, None, e))?;
    stored
        .transpose()
        .map(Option::flatten)
        .map_err(|e| Failure::store(step, None, e))
}

/// Registers the step with the checkpointer and builds its state.
pub(super) fn open_keyed<K>(
    step: &Step,
    core: &Core,
    specs: Vec<(String, rill_state::StateKind)>,
    values: Vec<(u8, crate::keyed::MakeValue<K>)>,
    me: usize,
    peers: usize,
) -> Result<Keyed<K>, Failure>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
{
    let step_id = match &core.checkpointer {
        Some(c) => {
            let meta = StepMeta {
                kind: core.kind.clone(),
                key_groups: core.groups.count(),
                states: specs,
            };
            c.borrow_mut()
                .register(step.name(), meta)
                .map_err(|e| Failure::state(step.name(), e))?
        }
        None => 0,
    };
    let args = TableArgs {
        step: step.name(),
        step_id,
        groups: core.groups,
        checkpointer: core.checkpointer.clone(),
        capacity: core.capacity,
    };
    let values = values
        .into_iter()
        .map(|(state, make)| make(&args, state))
        .collect();
    let owned = (0..core.groups.count())
        .filter(|&g| core.groups.owner(rill_state::KeyGroup(g), peers).0 == me)
        .collect();
    Ok(Keyed {
        step_id,
        groups: core.groups,
        values,
        entries: rill_state::Entries::of_step(
            core.checkpointer.clone(),
            core.capacity,
            step.name(),
        ),
        appends: HashMap::new(),
        owned,
        epoch: 0,
        scan: Default::default(),
        buf: Vec::new(),
    })
}
