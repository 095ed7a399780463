//! The logic of `windows_by_hand`, shared with its tests: tumbling
//! event-time windows written directly on the keyed core, using all four
//! kinds of state, both kinds of timers and a side output — and a
//! sequential model of the same job.

use std::collections::BTreeMap;

use rill::testing::Timed;
use rill::{Context, ListState, LogicResult, MapState, Process, SideOutput, States, Timer};
use rill::{TimerKind, TimerState, ValueState};
use serde::{Deserialize, Serialize};

/// The window length, in event time.
pub const WINDOW: u64 = 10;

/// An input event: a key, an event time and a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The key.
    pub key: u32,
    /// Event time.
    pub time: u64,
    /// The value summed per window.
    pub value: u64,
}

/// What the job emits per key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Out {
    /// A window closed: its start and the sum of its values.
    Window(u64, u64),
    /// At the end of the input: the key's on-time records, their values
    /// (sorted), how many epochs it had records in, and windows still open.
    Final {
        /// On-time records.
        count: u64,
        /// Their values, sorted.
        values: Vec<u64>,
        /// Epochs with records of the key.
        epochs: u64,
        /// Windows never closed (none, since the input's end closes all).
        open: Vec<(u64, u64)>,
    },
}

/// The job's keyed logic.
pub struct WindowsByHand {
    count: ValueState<u64>,
    epochs: ValueState<u64>,
    values: ListState<u64>,
    windows: MapState<u64, u64>,
    timers: TimerState,
    late: SideOutput,
}

impl WindowsByHand {
    /// The logic, with its states declared in `states`.
    pub fn new(states: &mut States<u32>) -> Self {
        WindowsByHand {
            count: states.value("count"),
            epochs: states.value("epochs"),
            values: states.list("values"),
            windows: states.map("windows"),
            timers: states.timers(),
            late: states.side_output("late"),
        }
    }
}

impl Process<u32, Event, Out, u64> for WindowsByHand {
    fn on_record(&mut self, cx: &mut Context<'_, u32, Out, u64>, e: Event) -> LogicResult {
        if cx.watermark().is_some_and(|w| e.time < w) {
            cx.emit_to(self.late, e.value);
            return Ok(());
        }
        cx.value(self.count)
            .update(|n| *n = Some(n.unwrap_or(0) + 1))?;
        cx.list(self.values).push(&e.value)?;
        let start = e.time / WINDOW * WINDOW;
        let sum = cx.map(self.windows).get(&start)?.unwrap_or(0);
        cx.map(self.windows).put(&start, &(sum + e.value))?;
        let epoch = cx.epoch();
        let mut timers = cx.timers(self.timers);
        timers.set_event_time(start + WINDOW)?;
        timers.set_event_time(u64::MAX)?;
        timers.set_epoch(epoch)?;
        Ok(())
    }

    fn on_timer(&mut self, cx: &mut Context<'_, u32, Out, u64>, timer: Timer) -> LogicResult {
        match (timer.kind, timer.time) {
            (TimerKind::Epoch, _) => {
                cx.value(self.epochs)
                    .update(|n| *n = Some(n.unwrap_or(0) + 1))?;
            }
            (TimerKind::EventTime, u64::MAX) => {
                let mut values = cx.list(self.values).items()?;
                values.sort_unstable();
                let out = Out::Final {
                    count: cx.value(self.count).get()?.unwrap_or(0),
                    values,
                    epochs: cx.value(self.epochs).get()?.unwrap_or(0),
                    open: cx.map(self.windows).entries()?,
                };
                cx.emit(out);
            }
            (TimerKind::EventTime, end) => {
                let start = end - WINDOW;
                // Every window that ends by now, from the lowest.
                for (s, sum) in cx.map(self.windows).entries()? {
                    if s > start {
                        break;
                    }
                    cx.emit(Out::Window(s, sum));
                    cx.map(self.windows).remove(&s)?;
                }
            }
        }
        Ok(())
    }
}

/// A deterministic feed of `records` events over `keys` keys, a watermark
/// every `every` records; some events are late.
pub fn feed(seed: u64, records: u64, keys: u32, every: u64) -> Vec<Timed<Event>> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut items = Vec::new();
    let mut clock = 0u64;
    for i in 0..records {
        clock += next() % 3;
        // Mostly near the clock; one in eight up to 40 behind it.
        let behind = if next() % 8 == 0 {
            next() % 40
        } else {
            next() % 5
        };
        let time = clock.saturating_sub(behind);
        let event = Event {
            key: (next() % u64::from(keys)) as u32,
            time,
            value: next() % 100,
        };
        items.push(Timed::Record(event.time, event));
        if (i + 1) % every == 0 {
            items.push(Timed::Watermark(clock.saturating_sub(8)));
        }
    }
    items
}

/// What the job emits for `items`, computed one item at a time: the main
/// output and the late records, each sorted.
#[allow(clippy::type_complexity)]
pub fn model(items: &[Timed<Event>]) -> (Vec<(u32, Out)>, Vec<(u32, u64)>) {
    #[derive(Default)]
    struct Key {
        count: u64,
        values: Vec<u64>,
        epochs: u64,
        windows: BTreeMap<u64, u64>,
        active: bool,
    }
    let mut keys: BTreeMap<u32, Key> = BTreeMap::new();
    let mut watermark: Option<u64> = None;
    let (mut out, mut late) = (Vec::new(), Vec::new());
    let close = |keys: &mut BTreeMap<u32, Key>, w: u64, out: &mut Vec<(u32, Out)>| {
        for (k, s) in keys.iter_mut() {
            let closed: Vec<u64> = s
                .windows
                .range(..=w.saturating_sub(WINDOW))
                .map(|(s, _)| *s)
                .collect();
            for start in closed {
                if start + WINDOW <= w {
                    let sum = s.windows.remove(&start).expect("listed");
                    out.push((*k, Out::Window(start, sum)));
                }
            }
            if w == u64::MAX {
                let mut values = s.values.clone();
                values.sort_unstable();
                // Event-time timers fire before the closing epoch's
                // timers: the last epoch is not counted yet.
                let (count, epochs) = (s.count, s.epochs);
                out.push((
                    *k,
                    Out::Final {
                        count,
                        values,
                        epochs,
                        open: Vec::new(),
                    },
                ));
            }
            if std::mem::take(&mut s.active) {
                s.epochs += 1;
            }
        }
    };
    for item in items {
        match item {
            Timed::Record(_, e) => {
                if watermark.is_some_and(|w| e.time < w) {
                    late.push((e.key, e.value));
                    continue;
                }
                let s = keys.entry(e.key).or_default();
                s.count += 1;
                s.values.push(e.value);
                *s.windows.entry(e.time / WINDOW * WINDOW).or_default() += e.value;
                s.active = true;
            }
            Timed::Watermark(w) => {
                let w = watermark.map_or(*w, |m| m.max(*w));
                watermark = Some(w);
                close(&mut keys, w, &mut out);
            }
        }
    }
    close(&mut keys, u64::MAX, &mut out);
    out.sort();
    late.sort();
    (out, late)
}
