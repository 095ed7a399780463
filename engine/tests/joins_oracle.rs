//! Seeded oracle tests for joins: windowed inner, left and full outer joins
//! (tumbling windows, with and without lateness) and the
//! interval join, over out-of-order input with late and too-late records;
//! 1, 2 and 3 workers, in memory and on RocksDB with a 2-key cache;
//! compared with a batch computation over the same events and watermarks.
//! Also: a left join emits no "no match" for a record whose match arrives
//! within the lateness; and the stream-table join, compared with the
//! table's latest update at or before each record's time.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rill::testing::Timed;
use rill::{JoinKind, Joined, Stream, Windows};
use std::collections::BTreeSet;
use std::time::Duration;

mod common;

/// A record of either side: key, id (unique over both sides), event time.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Event {
    key: u32,
    id: u64,
    time: u64,
}

/// What a join emitted: (join, left id, right id).
type Out = BTreeSet<(String, Option<u64>, Option<u64>)>;

const LOWER: u64 = 30;
const UPPER: u64 = 50;

/// Both sides' feeds: the same watermarks after each segment, so that
/// epoch `i` of each holds segment `i` and both watermarks agree.
fn feeds(seed: u64) -> (Vec<Timed<Event>>, Vec<Timed<Event>>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut left, mut right) = (Vec::new(), Vec::new());
    let (mut clock, mut w, mut id) = (1_000u64, None::<u64>, 0u64);
    for _ in 0..50 {
        for side in [&mut left, &mut right] {
            for _ in 0..rng.gen_range(0..25) {
                let after = w.map_or(0, |w| w + 1);
                let time = if rng.gen_bool(0.1) {
                    // Behind the watermark: late, or too late.
                    after.saturating_sub(rng.gen_range(1..300))
                } else {
                    rng.gen_range(after..=clock.max(after))
                };
                let key = rng.gen_range(0..8);
                side.push(Timed::Record(time, Event { key, id, time }));
                id += 1;
            }
        }
        clock += rng.gen_range(20..80);
        let next = clock.saturating_sub(40).max(w.unwrap_or(0));
        w = Some(next);
        left.push(Timed::Watermark(next));
        right.push(Timed::Watermark(next));
    }
    (left, right)
}

/// Each record with the watermark it arrives under.
fn arrivals(feed: &[Timed<Event>]) -> Vec<(Event, Option<u64>)> {
    let mut w = None;
    let mut out = Vec::new();
    for item in feed {
        match item {
            Timed::Watermark(x) => w = Some(*x),
            Timed::Record(_, e) => out.push((*e, w)),
        }
    }
    out
}

fn reached(w: Option<u64>, t: u64) -> bool {
    w.is_some_and(|w| w >= t)
}

/// The batch computation of every join the job runs.
fn model(left: &[Timed<Event>], right: &[Timed<Event>], windows: Windows, lateness: u64) -> Out {
    let (ls, rs) = (arrivals(left), arrivals(right));
    let size = match windows {
        Windows::Tumbling { size } | Windows::Hopping { size, .. } => size,
        Windows::Session { .. } => unreachable!(),
    };
    // Per window: the records of each side that joined it.
    let in_window = |side: &[(Event, Option<u64>)]| {
        let mut by: std::collections::BTreeMap<(u32, u64), Vec<u64>> = Default::default();
        for (e, w) in side {
            for (s, _) in windows.assign(e.time) {
                if !reached(*w, s + size - 1 + lateness) {
                    by.entry((e.key, s)).or_default().push(e.id);
                }
            }
        }
        by
    };
    let (lw, rw) = (in_window(&ls), in_window(&rs));
    let mut out = Out::new();
    let none = Vec::new();
    for (slot, lids) in &lw {
        let rids = rw.get(slot).unwrap_or(&none);
        for &l in lids {
            for &r in rids {
                for tag in ["inner", "left", "outer"] {
                    out.insert((tag.into(), Some(l), Some(r)));
                }
            }
            if rids.is_empty() {
                out.insert(("left".into(), Some(l), None));
                out.insert(("outer".into(), Some(l), None));
            }
        }
    }
    for (slot, rids) in &rw {
        if !lw.contains_key(slot) {
            for &r in rids {
                out.insert(("outer".into(), None, Some(r)));
            }
        }
    }
    for (l, lw) in &ls {
        for (r, rw) in &rs {
            let on_time = !reached(*lw, l.time) && !reached(*rw, r.time);
            let near = r.time + LOWER >= l.time && r.time <= l.time + UPPER;
            if on_time && near && l.key == r.key {
                out.insert(("interval".into(), Some(l.id), Some(r.id)));
            }
        }
    }
    out
}

fn tagged<'s>(
    s: Stream<'s, u32, Joined<Event, Event>>,
    tag: &'static str,
) -> Stream<'s, u32, (String, Option<u64>, Option<u64>)> {
    s.map(&format!("tag-{tag}"), move |j| match j {
        Joined::Both(l, r) => (tag.to_string(), Some(l.id), Some(r.id)),
        Joined::Left(l) => (tag.to_string(), Some(l.id), None),
        Joined::Right(r) => (tag.to_string(), None, Some(r.id)),
    })
}

fn check(seed: u64, windows: Windows, lateness: u64) {
    let (left, right) = feeds(seed);
    let expected = model(&left, &right, windows, lateness);
    let unmatched = expected
        .iter()
        .filter(|(_, l, r)| l.is_none() || r.is_none());
    assert!(unmatched.count() > 0, "the feed has records that meet none");
    let what = format!("seed {seed}, {windows:?}, lateness {lateness}");
    common::for_each_variant(&what, |args, about| {
        let (l, r) = (left.clone(), right.clone());
        let out = rill::testing::run_with(args, move |flow| {
            let lefts = flow
                .source_timed("lefts", l.clone())
                .key_by("left-key", |e: &Event| e.key);
            let rights = flow
                .source_timed("rights", r.clone())
                .key_by("right-key", |e: &Event| e.key);
            let lateness = Duration::from_millis(lateness);
            let join = |name: &'static str, kind| {
                let (a, b) = (lefts.clone(), rights.clone());
                tagged(a.window_join(name, b, windows, kind, lateness), name)
            };
            let interval = lefts
                .clone()
                .interval_join(
                    "interval",
                    rights.clone(),
                    Duration::from_millis(LOWER),
                    Duration::from_millis(UPPER),
                )
                .map("tag-interval", |(l, r)| {
                    ("interval".to_string(), Some(l.id), Some(r.id))
                });
            let (left, outer) = (join("left", JoinKind::Left), join("outer", JoinKind::Outer));
            join("inner", JoinKind::Inner).merge("all", [left, outer, interval])
        })
        .unwrap_or_else(|e| panic!("{about}: {e}"));
        let n = out.len();
        let got: Out = out.into_iter().map(|(_, o)| o).collect();
        assert_eq!(n, got.len(), "{about}: something was emitted twice");
        let missing: Vec<_> = expected.difference(&got).take(5).collect();
        let extra: Vec<_> = got.difference(&expected).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{about}: missing {missing:?}, extra {extra:?} (of {} expected)",
            expected.len()
        );
        println!("{about}: {} results, as the model", got.len());
    });
}

#[test]
fn tumbling_window_joins_and_the_interval_join_match_the_model() {
    check(41, Windows::Tumbling { size: 100 }, 80);
}

#[test]
fn window_joins_without_lateness_match_the_model() {
    check(42, Windows::Tumbling { size: 100 }, 0);
}

#[test]
fn a_window_join_over_overlapping_windows_is_refused() {
    let hopping = Windows::hopping(Duration::from_millis(100), Duration::from_millis(50));
    let err = rill::testing::run(1, move |flow| {
        let a = flow
            .source_timed("a", vec![Timed::Record(1, 1u32)])
            .key_by("ka", |v| *v);
        let b = flow
            .source_timed("b", vec![Timed::Record(1, 1u32)])
            .key_by("kb", |v| *v);
        a.window_join("j", b, hopping, JoinKind::Inner, Duration::ZERO)
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("step j") && err.contains("tumbling"), "{err}");
}

#[test]
fn a_left_join_waits_for_a_match_that_arrives_within_the_lateness() {
    // Left record at 100; the watermark passes its window's end (1 s) at
    // 1_500; its match at 200 arrives after that, within 1 s of lateness.
    let left = vec![
        Timed::Record(100, 1u32),
        Timed::Watermark(1_500),
        Timed::Watermark(1_600),
    ];
    let right = vec![
        Timed::Watermark(1_500),
        Timed::Record(200, 1u32),
        Timed::Watermark(1_600),
    ];
    let out = rill::testing::run(2, move |flow| {
        let a = flow.source_timed("a", left.clone()).key_by("ka", |v| *v);
        let b = flow.source_timed("b", right.clone()).key_by("kb", |v| *v);
        let window = Windows::tumbling(Duration::from_secs(1));
        a.window_join("j", b, window, JoinKind::Left, Duration::from_secs(1))
    })
    .unwrap();
    let out: Vec<_> = out.into_iter().map(|(_, j)| j).collect();
    assert_eq!(
        out,
        vec![Joined::Both(1, 1)],
        "no eager \"no match\" for the left record"
    );
}

/// The table join's model: each stream record meets the latest table
/// update (by event time) at or before its time, or, if it arrived behind
/// the watermark, at or before the watermark. Table updates are on time
/// and unique per key and time, so the result never depends on the order
/// within an epoch.
fn table_model(stream: &[Timed<Event>], table: &[Timed<Event>]) -> BTreeSet<(u64, Option<u64>)> {
    let updates: Vec<Event> = arrivals(table).into_iter().map(|(e, _)| e).collect();
    let latest = |key: u32, time: u64| {
        let at_or_before = updates.iter().filter(|u| u.key == key && u.time <= time);
        at_or_before.max_by_key(|u| u.time).map(|u| u.id)
    };
    arrivals(stream)
        .into_iter()
        .map(|(e, w)| (e.id, latest(e.key, w.map_or(e.time, |w| w.max(e.time)))))
        .collect()
}

#[test]
fn a_stream_table_join_matches_the_model() {
    let (stream, right) = feeds(43);
    // The table: on-time updates only, one per key and time.
    let mut seen = BTreeSet::new();
    let mut w = None;
    let table: Vec<Timed<Event>> = right
        .into_iter()
        .filter(|item| match item {
            Timed::Watermark(x) => {
                w = Some(*x);
                true
            }
            Timed::Record(t, e) => !reached(w, *t) && seen.insert((e.key, *t)),
        })
        .collect();
    let expected = table_model(&stream, &table);
    let late = arrivals(&stream)
        .iter()
        .filter(|(e, w)| reached(*w, e.time))
        .count();
    assert!(late > 0, "the stream has records behind the watermark");
    assert!(
        expected.iter().any(|(_, t)| t.is_none()),
        "some records meet no update"
    );
    common::for_each_variant("seed 43, stream-table join", |args, about| {
        let (s, t) = (stream.clone(), table.clone());
        let out = rill::testing::run_with(args, move |flow| {
            let table = flow
                .source_timed("table", t.clone())
                .key_by("table-key", |e: &Event| e.key)
                .map("update-id", |e| e.id);
            flow.source_timed("stream", s.clone())
                .key_by("stream-key", |e: &Event| e.key)
                .join_table("enriched", table)
                .map("ids", |(e, update)| (e.id, update))
        })
        .unwrap_or_else(|e| panic!("{about}: {e}"));
        let n = out.len();
        let got: BTreeSet<(u64, Option<u64>)> = out.into_iter().map(|(_, o)| o).collect();
        assert_eq!(n, got.len(), "{about}: a record was emitted twice");
        let wrong: Vec<_> = got.symmetric_difference(&expected).take(5).collect();
        assert!(
            wrong.is_empty(),
            "{about}: differs from the model at {wrong:?}"
        );
        println!("{about}: {} records, as the model", got.len());
    });
}

#[test]
fn a_stream_table_join_meets_the_latest_value() {
    // The table's updates come in epochs of their own, before the
    // stream's records.
    let table = vec![
        Timed::Record(0, (1u32, "one".to_string())),
        Timed::Watermark(5),
        Timed::Record(6, (1, "uno".to_string())),
        Timed::Watermark(10),
    ];
    let stream = vec![
        Timed::Watermark(5),
        Timed::Watermark(10),
        Timed::Record(20, 1u32),
        Timed::Record(20, 2),
    ];
    let out = rill::testing::run(3, move |flow| {
        let t = (flow.source_timed("table", table.clone()))
            .key_by("kt", |(k, _): &(u32, String)| *k)
            .map("name", |(_, name)| name);
        let s = flow
            .source_timed("stream", stream.clone())
            .key_by("ks", |v| *v);
        s.join_table("named", t)
    })
    .unwrap();
    let mut out: Vec<_> = out.into_iter().map(|(_, j)| j).collect();
    out.sort();
    assert_eq!(out, vec![(1, Some("uno".to_string())), (2, None)]);
}
