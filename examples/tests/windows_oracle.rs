//! Seeded oracle test of the keyed core: `windows_by_hand` (value, list and
//! map state, event-time and epoch timers, a side output for late records)
//! on 1, 2 and 3 workers, in memory and with RocksDB checkpoints under a
//! two-entry cache, against a sequential model of the same input and
//! watermarks.

#[path = "../windows_by_hand/logic.rs"]
#[allow(dead_code)]
mod logic;

use std::time::Duration;

use rill::{Collector, Job, JobArgs, States};

type Emitted = (Vec<(u32, logic::Out)>, Vec<(u32, u64)>);

fn run(items: Vec<rill::testing::Timed<logic::Event>>, args: JobArgs) -> Emitted {
    let (main, late) = (Collector::new(), Collector::new());
    let (main_sink, late_sink) = (main.clone(), late.clone());
    Job::new("windows-oracle", args)
        .unwrap()
        .run(move |flow| {
            let mut states = States::new();
            let logic = logic::WindowsByHand::new(&mut states);
            let mut outputs = flow
                .source_timed("feed", items.clone())
                .key_by("by-key", |e: &logic::Event| e.key)
                .process_with("windows", states, logic);
            outputs.sides.remove(0).collect("late", &late_sink);
            outputs.output.collect("emitted", &main_sink);
        })
        .unwrap();
    let (mut main, mut late) = (main.take(), late.take());
    main.sort();
    late.sort();
    (main, late)
}

#[test]
fn the_keyed_core_matches_a_sequential_model() {
    // The second feed ends with a watermark.
    for (seed, records) in [(1u64, 3000), (29, 97 * 30)] {
        let items = logic::feed(seed, records, 13, 97);
        let (want_main, want_late) = logic::model(&items);
        assert!(
            !want_late.is_empty(),
            "seed {seed}: the feed has late records"
        );
        let windows = want_main
            .iter()
            .filter(|(_, o)| matches!(o, logic::Out::Window(..)))
            .count();
        assert!(windows > 100, "seed {seed}: only {windows} windows");
        for workers in [1usize, 2, 3] {
            let memory = JobArgs {
                workers,
                epoch_interval: Duration::from_millis(20),
                ..JobArgs::default()
            };
            let dir = tempfile::tempdir().unwrap();
            let durable = JobArgs {
                state_dir: Some(dir.path().to_owned()),
                state_cache_keys: 2,
                ..memory.clone()
            };
            for (label, args) in [("in memory", memory), ("RocksDB, cache 2", durable)] {
                let (main, late) = run(items.clone(), args);
                let about = format!("seed {seed}, {workers} workers, {label}");
                assert_eq!(late, want_late, "{about}: late records");
                assert_eq!(main.len(), want_main.len(), "{about}: outputs");
                for (got, want) in main.iter().zip(&want_main) {
                    assert_eq!(got, want, "{about}");
                }
            }
        }
    }
}
