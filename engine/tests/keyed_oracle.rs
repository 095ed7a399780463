//! Seeded oracle tests for the keyed stateful steps (count, sum, aggregate,
//! reduce, stateful_map, per-epoch emission): 1, 2 and 3 workers, in memory
//! and with checkpoints to RocksDB under a cache far smaller than the state,
//! each compared with a from-scratch sequential computation.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rill::JobArgs;
use std::collections::BTreeMap;
use std::time::Duration;

const SEEDS: [u64; 2] = [3, 99];
const WORKERS: [usize; 3] = [1, 2, 3];

fn input(seed: u64) -> Vec<(String, i64)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = rng.gen_range(3000..6000);
    (0..n)
        .map(|_| {
            let key = format!("k{}", rng.gen_range(0..300u32));
            (key, rng.gen_range(-1000..1000i64))
        })
        .collect()
}

/// The variants every aggregation runs under: (label, flags, the state
/// directory to keep alive while it runs).
fn variants(workers: usize) -> Vec<(String, JobArgs, Option<tempfile::TempDir>)> {
    let memory = JobArgs {
        workers,
        epoch_interval: Duration::from_millis(20),
        ..JobArgs::default()
    };
    let mut out = vec![(format!("{workers} workers, in memory"), memory, None)];
    let dir = tempfile::tempdir().unwrap();
    let durable = JobArgs {
        workers,
        epoch_interval: Duration::from_millis(5),
        state_dir: Some(dir.path().to_owned()),
        state_cache_keys: 16,
        ..JobArgs::default()
    };
    let label = format!("{workers} workers, RocksDB, cache 16 keys");
    out.push((label, durable, Some(dir)));
    out
}

/// One run of an oracle test: the seed, its input (also per key), the
/// worker count and the variant's label.
struct Case<'a> {
    seed: u64,
    data: &'a [(String, i64)],
    per_key: &'a BTreeMap<String, Vec<i64>>,
    workers: usize,
    label: String,
}

impl Case<'_> {
    /// Names the run and `key` in an assertion message.
    fn about(&self, key: &str) -> String {
        format!("seed {}, {}, key {key}", self.seed, self.label)
    }
}

/// Runs `check` for every seed, worker count and variant, with the
/// variant's flags.
fn for_each_case(mut check: impl FnMut(&Case<'_>, JobArgs)) {
    for seed in SEEDS {
        let data = input(seed);
        let per_key = inputs_by_key(&data);
        for workers in WORKERS {
            for (label, args, _dir) in variants(workers) {
                let case = Case {
                    seed,
                    data: &data,
                    per_key: &per_key,
                    workers,
                    label,
                };
                check(&case, args);
            }
        }
    }
}

/// Per-key output sequences, in the order the owner worker emitted them.
fn by_key<V: Clone>(out: &[(String, V)]) -> BTreeMap<String, Vec<V>> {
    let mut m: BTreeMap<String, Vec<V>> = BTreeMap::new();
    for (k, v) in out {
        m.entry(k.clone()).or_default().push(v.clone());
    }
    m
}

/// Per-key inputs in input order.
fn inputs_by_key(data: &[(String, i64)]) -> BTreeMap<String, Vec<i64>> {
    by_key(data)
}

#[test]
fn count_emits_one_to_n_per_key() {
    for_each_case(|case, args| {
        let expected: BTreeMap<String, Vec<u64>> = case
            .per_key
            .iter()
            .map(|(k, v)| (k.clone(), (1..=v.len() as u64).collect()))
            .collect();
        let d = case.data.to_vec();
        let out = rill::testing::run_with(args, move |flow| {
            flow.source_iter_keyed("in", d.clone()).count("count")
        })
        .unwrap();
        assert_eq!(by_key(&out), expected, "seed {}, {}", case.seed, case.label);
    });
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Sum(i64),
    Range(i64, i64),
    Max(i64),
}

#[test]
fn sum_aggregate_reduce_match_a_sequential_fold() {
    for_each_case(|case, args| {
        let d = case.data.to_vec();
        let out = rill::testing::run_with(args, move |flow| {
            let sums = flow
                .source_iter_keyed("in", d.clone())
                .sum("sum")
                .map("tag-sum", Out::Sum);
            let ranges = flow
                .source_iter_keyed("in2", d.clone())
                .aggregate(
                    "min-max",
                    || (i64::MAX, i64::MIN),
                    |a, v| {
                        a.0 = a.0.min(v);
                        a.1 = a.1.max(v);
                    },
                )
                .map("tag-range", |(lo, hi)| Out::Range(lo, hi));
            let maxes = flow
                .source_iter_keyed("in3", d.clone())
                .reduce("max", |a, b| a.max(b))
                .map("tag-max", Out::Max);
            sums.merge("all", [ranges, maxes])
        })
        .unwrap();
        let mut sums: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        let mut ranges: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
        let mut maxes: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for (k, o) in out {
            match o {
                Out::Sum(x) => sums.entry(k).or_default().push(x),
                Out::Range(lo, hi) => ranges.entry(k).or_default().push((lo, hi)),
                Out::Max(m) => maxes.entry(k).or_default().push(m),
            }
        }
        for (k, values) in case.per_key {
            let ctx = case.about(k);
            let lo = *values.iter().min().unwrap();
            let hi = *values.iter().max().unwrap();
            let n = values.len();
            assert_eq!(sums[k].len(), n, "{ctx}: sum outputs");
            assert_eq!(sums[k].last(), Some(&values.iter().sum()), "{ctx}");
            assert_eq!(ranges[k].len(), n, "{ctx}: aggregate outputs");
            assert_eq!(ranges[k].last(), Some(&(lo, hi)), "{ctx}");
            assert_eq!(maxes[k].len(), n, "{ctx}: reduce outputs");
            assert_eq!(maxes[k].last(), Some(&hi), "{ctx}");
            if case.workers == 1 {
                // One worker: each changelog is exactly the running fold.
                let mut acc = (0, i64::MAX, i64::MIN);
                let mut expect_sums = Vec::new();
                let mut expect_ranges = Vec::new();
                let mut expect_maxes = Vec::new();
                for v in values {
                    acc = (acc.0 + v, acc.1.min(*v), acc.2.max(*v));
                    expect_sums.push(acc.0);
                    expect_ranges.push((acc.1, acc.2));
                    expect_maxes.push(acc.2);
                }
                assert_eq!(sums[k], expect_sums, "{ctx}");
                assert_eq!(ranges[k], expect_ranges, "{ctx}");
                assert_eq!(maxes[k], expect_maxes, "{ctx}");
            }
        }
    });
}

#[test]
fn stateful_map_keeps_any_serde_state_and_deletes_on_none() {
    // State: (count, sum) of the key's values since the last reset; every
    // 4th value resets (deletes) the state and outputs the average.
    for_each_case(|case, args| {
        let d = case.data.to_vec();
        let out = rill::testing::run_with(args, move |flow| {
            flow.source_iter_keyed("in", d.clone()).stateful_map(
                "avg-of-4",
                |_, state: Option<(u32, i64)>, v| {
                    let (n, s) = state.unwrap_or((0, 0));
                    let (n, s) = (n + 1, s + v);
                    if n == 4 {
                        (None, Some(s / 4))
                    } else {
                        (Some((n, s)), None)
                    }
                },
            )
        })
        .unwrap();
        let got = by_key(&out);
        for (k, values) in case.per_key {
            let ctx = case.about(k);
            let outs = &got[k];
            assert_eq!(outs.len(), values.len(), "{ctx}");
            let resets = outs.iter().filter(|o| o.is_some()).count();
            assert_eq!(resets, values.len() / 4, "{ctx}");
            if case.workers == 1 {
                let expected: Vec<Option<i64>> = values
                    .chunks(4)
                    .flat_map(|c| {
                        let mut v = vec![None; c.len()];
                        if c.len() == 4 {
                            v[3] = Some(c.iter().sum::<i64>() / 4);
                        }
                        v
                    })
                    .collect();
                assert_eq!(outs, &expected, "{ctx}");
            }
        }
    });
}

#[test]
fn per_epoch_emits_each_changed_key_once_per_epoch_with_its_last_value() {
    for seed in SEEDS {
        let data = input(seed);
        let per_key = inputs_by_key(&data);
        for workers in WORKERS {
            let args = JobArgs {
                workers,
                // One epoch for the whole bounded input.
                epoch_interval: Duration::from_secs(60),
                ..JobArgs::default()
            };
            let d = data.clone();
            let out = rill::testing::run_with(args, move |flow| {
                flow.source_iter_keyed("in", d.clone())
                    .per_epoch()
                    .count("count")
            })
            .unwrap();
            let got = by_key(&out);
            assert_eq!(got.len(), per_key.len(), "seed {seed}, {workers} workers");
            for (k, values) in &per_key {
                assert_eq!(
                    got[k],
                    vec![values.len() as u64],
                    "seed {seed}, {workers} workers, {k}"
                );
            }
        }
    }
}
