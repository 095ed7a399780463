//! Seeded oracle tests for event-time windows: tumbling, hopping and
//! session windows, each with count, sum, reduce (max) and aggregate (sum
//! of squares), with and without allowed lateness, over out-of-order input
//! with late and too-late records; 1, 2 and 3 workers, in memory and on
//! RocksDB with a 2-key cache; compared with a batch computation over the
//! same events and watermarks.
//!
//! The feed: records after the watermark arrive in any order within an
//! epoch; each record behind the watermark arrives in an epoch of its own,
//! so whether it is too late never depends on the order of an epoch's
//! records across workers.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rill::testing::Timed;
use rill::{Stream, Windows};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

mod common;

/// A record of the feed: key, value (its index: unique), event time.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Event {
    key: u32,
    value: u64,
    time: u64,
}

const AGGREGATIONS: [&str; 4] = ["count", "sum", "max", "squares"];

fn feed(seed: u64) -> Vec<Timed<Event>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = rng.gen_range(1200..1800u64);
    let (mut clock, mut w): (u64, Option<u64>) = (500, None);
    let mut items = Vec::new();
    for value in 0..n {
        clock += rng.gen_range(0..10);
        let after = w.map_or(0, |w| w + 1);
        let time = rng.gen_range(after..=clock.max(after));
        let key = rng.gen_range(0..12);
        items.push(Timed::Record(time, Event { key, value, time }));
        if value % 40 == 39 {
            let next = clock.saturating_sub(60).max(w.unwrap_or(0));
            w = Some(next);
            items.push(Timed::Watermark(next));
            if rng.gen_bool(0.6) {
                // A record behind the watermark, alone in its epoch.
                let time = next.saturating_sub(rng.gen_range(0..400));
                let key = rng.gen_range(0..12);
                let value = n + value;
                items.push(Timed::Record(time, Event { key, value, time }));
                items.push(Timed::Watermark(next));
            }
        }
    }
    items
}

/// What a run emitted: per (aggregation, key, start, end), every value
/// emitted; and the late records' values.
#[derive(Default, Debug, PartialEq)]
struct Emitted {
    windows: BTreeMap<(String, u32, u64, u64), Vec<u64>>,
    late: BTreeSet<u64>,
}

/// The job: the four aggregations over `windows`, tagged, plus the count
/// step's late records (tag "late", value in `end`).
fn job<'s>(
    flow: &mut rill::Flow<'s>,
    items: Vec<Timed<Event>>,
    windows: Windows,
    lateness: u64,
) -> Stream<'s, u32, (String, u64, u64, u64)> {
    let keyed = flow
        .source_timed("feed", items)
        .key_by("by-key", |e: &Event| e.key)
        .map("value", |e| e.value);
    let late_slot = Rc::new(RefCell::new(None));
    let windowed = |_: &str| {
        keyed
            .clone()
            .window(windows)
            .allowed_lateness(Duration::from_millis(lateness))
    };
    let slot = late_slot.clone();
    let tag = |s: Stream<'s, u32, rill::Window<u64>>, name: &'static str| {
        s.map(&format!("tag-{name}"), move |w| {
            (name.to_string(), w.start, w.end, w.value)
        })
    };
    let count = tag(
        windowed("count")
            .on_late(move |late| *slot.borrow_mut() = Some(late))
            .count("count"),
        "count",
    );
    let sum = tag(windowed("sum").sum("sum"), "sum");
    let max = tag(windowed("max").reduce("max", |a, b| a.max(b)), "max");
    let squares = windowed("squares");
    let squares = if windows.merges() {
        squares.aggregate_merged("squares", || 0u64, |a, v| *a += v * v, |a, b| a + b)
    } else {
        squares.aggregate("squares", || 0u64, |a, v| *a += v * v)
    };
    let squares = tag(squares, "squares");
    let late = late_slot
        .borrow_mut()
        .take()
        .expect("the late output was routed");
    let late = late.map("tag-late", |v| ("late".to_string(), 0, v, 0));
    count.merge("all", [sum, max, squares, late])
}

fn collect(out: Vec<(u32, (String, u64, u64, u64))>) -> Emitted {
    let mut e = Emitted::default();
    for (key, (tag, start, end, value)) in out {
        if tag == "late" {
            assert!(e.late.insert(end), "late record {end} emitted twice");
        } else {
            e.windows
                .entry((tag, key, start, end))
                .or_default()
                .push(value);
        }
    }
    e
}

/// An aggregation's value of `values`.
fn aggregate(tag: &str, values: &[u64]) -> u64 {
    match tag {
        "count" => values.len() as u64,
        "sum" => values.iter().sum(),
        "max" => values.iter().copied().max().unwrap_or(0),
        "squares" => values.iter().map(|v| v * v).sum(),
        _ => unreachable!(),
    }
}

/// The batch computation. Fixed windows: per window its values and how
/// many times it is emitted (once complete, plus once per update after).
/// Sessions: the final sessions and their values. And the late records.
struct Model {
    windows: BTreeMap<(u32, u64, u64), (Vec<u64>, usize)>,
    late: BTreeSet<u64>,
}

fn model(items: &[Timed<Event>], windows: Windows, lateness: u64) -> Model {
    let mut w: Option<u64> = None;
    let reached = |w: Option<u64>, t: u64| w.is_some_and(|w| w >= t);
    let mut m = Model {
        windows: BTreeMap::new(),
        late: BTreeSet::new(),
    };
    for item in items {
        let e = match item {
            Timed::Watermark(x) => {
                w = Some(*x);
                continue;
            }
            Timed::Record(_, e) => e,
        };
        match windows {
            Windows::Session { gap } => {
                let (mut start, mut end) = (e.time, e.time + gap);
                // Closed sessions are gone: only open ones can grow.
                let open = |x: u64| !reached(w, x - 1 + lateness);
                let touching: Vec<_> = (m.windows.keys())
                    .filter(|(k, s, x)| *k == e.key && *s < end && start < *x && open(*x))
                    .copied()
                    .collect();
                if touching.is_empty() && reached(w, end - 1 + lateness) {
                    m.late.insert(e.value);
                    continue;
                }
                let mut values = vec![e.value];
                for t in touching {
                    let (v, _) = m.windows.remove(&t).unwrap();
                    values.extend(v);
                    start = start.min(t.1);
                    end = end.max(t.2);
                }
                m.windows.insert((e.key, start, end), (values, 0));
            }
            _ => {
                let mut any = false;
                for (s, x) in windows.assign(e.time) {
                    if reached(w, x - 1 + lateness) {
                        continue;
                    }
                    any = true;
                    let slot = m.windows.entry((e.key, s, x)).or_insert_with(|| {
                        // Emitted once complete, if it was not yet.
                        (Vec::new(), usize::from(!reached(w, x - 1)))
                    });
                    slot.0.push(e.value);
                    if reached(w, x - 1) {
                        slot.1 += 1;
                    }
                }
                if !any {
                    m.late.insert(e.value);
                }
            }
        }
    }
    m
}

fn check(seed: u64, windows: Windows, lateness: u64) {
    let items = feed(seed);
    let expected = model(&items, windows, lateness);
    assert!(!expected.late.is_empty(), "the feed has too-late records");
    let what = format!("seed {seed}, {windows:?}, lateness {lateness}");
    common::for_each_variant(&what, |args, about| {
        let feed = items.clone();
        let started = std::time::Instant::now();
        let out =
            rill::testing::run_with(args, move |flow| job(flow, feed.clone(), windows, lateness))
                .unwrap_or_else(|e| panic!("{about}: {e}"));
        let got = collect(out);
        assert_eq!(got.late, expected.late, "{about}: late records");
        compare(&got, &expected, windows, &about);
        println!(
            "{about}: {} windows, {} late records: as the model ({:.1?})",
            expected.windows.len(),
            got.late.len(),
            started.elapsed()
        );
    });
}

fn compare(got: &Emitted, expected: &Model, windows: Windows, about: &str) {
    for tag in AGGREGATIONS {
        for ((key, s, e), (values, emissions)) in &expected.windows {
            let emitted = got.windows.get(&(tag.to_string(), *key, *s, *e));
            let emitted = emitted.unwrap_or_else(|| {
                panic!("{about}: {tag} of key {key} window [{s}, {e}) was never emitted")
            });
            // Values only grow as records come: the last is the largest.
            let last = emitted.iter().copied().max().unwrap();
            assert_eq!(
                last,
                aggregate(tag, values),
                "{about}: {tag} of key {key} window [{s}, {e})"
            );
            if !windows.merges() {
                assert_eq!(
                    emitted.len(),
                    *emissions,
                    "{about}: {tag} of key {key} window [{s}, {e}): emissions"
                );
            }
        }
        for (t, key, s, e) in got.windows.keys().filter(|k| k.0 == tag) {
            // Fixed windows: exactly the model's. Sessions: each emitted
            // session lies inside one the model ends with.
            let known = expected
                .windows
                .keys()
                .any(|(k, ms, me)| k == key && ms <= s && e <= me);
            assert!(
                known,
                "{about}: {t} emitted key {key} window [{s}, {e}) the model has not"
            );
            if !windows.merges() {
                assert!(expected.windows.contains_key(&(*key, *s, *e)));
            }
        }
    }
}

#[test]
fn tumbling_windows_match_the_model() {
    check(11, Windows::Tumbling { size: 100 }, 0);
    check(12, Windows::Tumbling { size: 100 }, 150);
}

#[test]
fn hopping_windows_match_the_model() {
    check(
        21,
        Windows::Hopping {
            size: 100,
            slide: 30,
        },
        50,
    );
    // Slices as long as the slide, and no lateness: a slice's removal
    // and its newest window's result share a timer.
    check(
        22,
        Windows::Hopping {
            size: 100,
            slide: 25,
        },
        0,
    );
}

#[test]
fn session_windows_match_the_model() {
    check(31, Windows::Session { gap: 40 }, 0);
    check(32, Windows::Session { gap: 40 }, 60);
}
