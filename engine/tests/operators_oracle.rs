//! Seeded oracle tests: every stateless operator, run with 1, 2 and 3
//! workers, against a plain sequential computation over the same input.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

const SEEDS: [u64; 3] = [1, 7, 2024];
const WORKERS: [usize; 3] = [1, 2, 3];

fn input(seed: u64) -> Vec<(u32, i64)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = rng.gen_range(500..3000);
    (0..n)
        .map(|_| (rng.gen_range(0..50u32), rng.gen_range(-1000..1000i64)))
        .collect()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[test]
fn filter_map_flat_map_match_sequential() {
    for seed in SEEDS {
        let data = input(seed);
        let expected: Vec<i64> = data
            .iter()
            .filter(|(_, x)| x % 3 != 0)
            .map(|(_, x)| x * 2 + 1)
            .flat_map(|x| vec![x; (x.unsigned_abs() % 3) as usize])
            .collect();
        for workers in WORKERS {
            let d = data.clone();
            let out = rill::testing::run(workers, move |flow| {
                flow.source_iter("in", d.clone())
                    .filter("not-div-3", |(_, x)| x % 3 != 0)
                    .map("affine", |(_, x)| x * 2 + 1)
                    .flat_map("repeat", |x: i64| vec![x; (x.unsigned_abs() % 3) as usize])
            })
            .unwrap();
            let got: Vec<i64> = out.into_iter().map(|(_, v)| v).collect();
            assert_eq!(
                sorted(got),
                sorted(expected.clone()),
                "seed {seed}, {workers} workers"
            );
        }
    }
}

#[test]
fn branch_routes_to_first_match_or_other() {
    for seed in SEEDS {
        let data = input(seed);
        let route = |x: i64| {
            if x < -500 {
                0
            } else if x % 2 == 0 {
                1
            } else {
                2
            }
        };
        let expected: Vec<(u8, i64)> = data.iter().map(|(_, x)| (route(*x) as u8, *x)).collect();
        for workers in WORKERS {
            let d = data.clone();
            let out = rill::testing::run(workers, move |flow| {
                let mut parts = flow
                    .source_iter("in", d.clone())
                    .map("value", |(_, x)| x)
                    .branch("route")
                    .when("low", |x| *x < -500)
                    .when("even", |x| x % 2 == 0)
                    .split();
                let low = parts.take("low").map("tag-low", |x| (0u8, x));
                let even = parts.take("even").map("tag-even", |x| (1u8, x));
                let other = parts.other().map("tag-other", |x| (2u8, x));
                low.merge("all", [even, other])
            })
            .unwrap();
            let got: Vec<(u8, i64)> = out.into_iter().map(|(_, v)| v).collect();
            assert_eq!(
                sorted(got),
                sorted(expected.clone()),
                "seed {seed}, {workers} workers"
            );
        }
    }
}

#[test]
fn key_by_puts_each_key_on_its_owner_in_order() {
    let groups = rill_state::KeyGroups::default();
    for seed in SEEDS {
        let data: Vec<(u32, i64)> = input(seed);
        let expected: Vec<(u32, usize, i64)> = data
            .iter()
            .enumerate()
            .map(|(i, (k, v))| (*k, i, *v))
            .collect();
        for workers in WORKERS {
            let d = data.clone();
            let out = rill::testing::run(workers, move |flow| {
                let me = flow.worker_index();
                flow.source_iter("in", d.clone().into_iter().enumerate())
                    .key_by("by-key", |(_, (k, _))| *k)
                    .map("tag-worker", move |(i, (_, v))| (i, v, me))
            })
            .unwrap();
            // Source worker w reads input positions w, w + n, ...: per key and
            // per source worker, positions must arrive in increasing order.
            let mut last: BTreeMap<(u32, usize), usize> = BTreeMap::new();
            let mut got = Vec::new();
            for (k, (i, v, worker)) in out {
                let owner = groups.owner(groups.group_of_key(&k), workers).0;
                assert_eq!(worker, owner, "key {k} processed off its owner");
                if let Some(prev) = last.insert((k, i % workers), i) {
                    assert!(prev < i, "key {k}: position {i} after {prev}");
                }
                got.push((k, i, v));
            }
            assert_eq!(
                sorted(got),
                sorted(expected.clone()),
                "seed {seed}, {workers} workers"
            );
        }
    }
}
