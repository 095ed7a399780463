//! The keyed core's resume test: `windows_by_hand` (value, list and map
//! state, both kinds of timers, a side output) on 2 workers is killed with
//! SIGKILL at random moments — at least once inside a checkpoint write —
//! and restarted on the same state directory each time. Its final state
//! per key and every window it fired equal an uninterrupted run's (the
//! sequential model's); output is at-least-once, so repeats are allowed,
//! but nothing else may appear.

mod common;
#[path = "../windows_by_hand/logic.rs"]
#[allow(dead_code)]
mod logic;

use std::collections::BTreeSet;
use std::process::Command;

use common::Running;

const RECORDS: u64 = 60_000;
const KEYS: u32 = 40;
const EVERY: u64 = 100;
const SEED: u64 = 5;

fn start(state: &std::path::Path, out: &std::path::Path) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_windows_by_hand"));
    command
        .args(["-w", "2", "--records", &RECORDS.to_string()])
        .args(["--keys", &KEYS.to_string(), "--every", &EVERY.to_string()])
        .args(["--seed", &SEED.to_string()])
        .arg("--state-dir")
        .arg(state)
        .arg("--out")
        .arg(out);
    Running::spawn(command)
}

/// Every whole line the workers wrote: main outputs and late records.
#[allow(clippy::type_complexity)]
fn emitted(out: &std::path::Path) -> (Vec<(u32, logic::Out)>, Vec<(u32, u64)>) {
    let (mut main, mut late) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(out).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        // A kill may cut the last line short: only whole lines count.
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let key = v["key"].as_u64().unwrap() as u32;
            if let Some(o) = v.get("out") {
                main.push((key, serde_json::from_value(o.clone()).unwrap()));
            } else {
                late.push((key, v["late"].as_u64().unwrap()));
            }
        }
    }
    (main, late)
}

/// An output, short enough for a failure message.
fn brief((key, out): &(u32, logic::Out)) -> String {
    match out {
        logic::Out::Window(start, sum) => format!("key {key}: window {start} = {sum}"),
        logic::Out::Final {
            count,
            values,
            epochs,
            open,
        } => format!(
            "key {key}: final count {count}, {} values summing {}, {epochs} epochs, {} open",
            values.len(),
            values.iter().sum::<u64>(),
            open.len()
        ),
    }
}

/// Without kills the binary's output is the model's exactly (its feed
/// ends with a watermark: the last epochs close at once).
#[test]
fn an_uninterrupted_run_emits_what_the_model_does() {
    let items = logic::feed(SEED, RECORDS, KEYS, EVERY);
    let (want_main, _) = logic::model(&items);
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut last = start(state.path(), out.path());
    assert!(last.child.wait().unwrap().success());
    let (main, _) = emitted(out.path());
    let got: BTreeSet<&(u32, logic::Out)> = main.iter().collect();
    let want: BTreeSet<&(u32, logic::Out)> = want_main.iter().collect();
    let missing: Vec<String> = want.difference(&got).map(|o| brief(o)).collect();
    let extra: Vec<String> = got.difference(&want).map(|o| brief(o)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {:?}; extra {:?}",
        &missing[..missing.len().min(3)],
        &extra[..extra.len().min(3)]
    );
    assert_eq!(main.len(), want_main.len(), "each output once");
}

#[test]
fn windows_by_hand_survives_repeated_sigkill() {
    let items = logic::feed(SEED, RECORDS, KEYS, EVERY);
    let (want_main, want_late) = logic::model(&items);
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    common::kill_repeatedly(|| start(state.path(), out.path()), 5, 300);
    let mut last = start(state.path(), out.path());
    let status = last.child.wait().unwrap();
    assert!(status.success(), "the final run failed: {status}");

    let (main, late) = emitted(out.path());
    let got: BTreeSet<&(u32, logic::Out)> = main.iter().collect();
    let want: BTreeSet<&(u32, logic::Out)> = want_main.iter().collect();
    assert_eq!(
        want.len(),
        want_main.len(),
        "the model emits each output once"
    );
    let missing: Vec<String> = want.difference(&got).map(|o| brief(o)).collect();
    let extra: Vec<String> = got.difference(&want).map(|o| brief(o)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} outputs of an uninterrupted run missing, e.g. {:?}; {} outputs no uninterrupted run has, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(4)],
        extra.len(),
        &extra[..extra.len().min(4)]
    );
    let finals = main
        .iter()
        .filter(|(_, o)| matches!(o, logic::Out::Final { .. }))
        .count();
    assert!(finals >= KEYS as usize, "every key's final state came out");
    let got_late: BTreeSet<&(u32, u64)> = late.iter().collect();
    let want_late: BTreeSet<&(u32, u64)> = want_late.iter().collect();
    assert!(
        got_late == want_late,
        "late records: {} for {} expected",
        got_late.len(),
        want_late.len()
    );
    eprintln!("{} outputs for {} expected", main.len(), want_main.len());
}
