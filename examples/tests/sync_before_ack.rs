//! A prepared marker is never acknowledged before its batch is synced.
//! SIGKILL leaves the page cache intact, so kill tests cannot show this;
//! tracing the system calls can. `windows_by_hand` runs under `strace`
//! (installed by `scripts/install-deps.sh`): every time a worker logs
//! "checkpoint: prepared epoch" — the moment it lets the epoch go — the
//! last write to a RocksDB write-ahead log before it must have been
//! followed by an `fdatasync` or `fsync` of that log, also before it.

use std::collections::{HashMap, HashSet};
use std::process::Command;

/// The syscall, its first argument and the whole line, for a trace line.
fn call(line: &str) -> Option<(&str, &str)> {
    // strace pads the pid with spaces.
    let rest = line.trim_start().split_once(' ')?.1.trim_start(); // after the pid
    let rest = rest.split_once(' ')?.1; // after the time
    let (name, args) = rest.split_once('(')?;
    let first = args.split([',', ')', ' ']).next()?;
    Some((name, first))
}

#[test]
fn a_prepared_marker_is_acknowledged_only_after_its_batch_is_synced() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let status = Command::new("strace")
        .args(["-f", "-tt", "-s", "200", "-e"])
        .arg("trace=openat,close,write,pwrite64,writev,fdatasync,fsync")
        .arg("-o")
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_windows_by_hand"))
        // One worker: it has one batch in flight, so no other batch's
        // write can fall between its sync and its acknowledgement.
        .args(["--records", "20000", "--every", "500", "-w", "1"])
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("RUST_LOG", "info,rill::checkpoint=debug")
        .stderr(std::process::Stdio::null())
        .status()
        .expect("strace runs (scripts/install-deps.sh installs it)");
    assert!(status.success(), "the traced job failed: {status}");
    let text = std::fs::read_to_string(&trace).unwrap();
    // Open write-ahead logs by descriptor; per thread, a write or sync
    // that is still running (strace splits it over two lines).
    let mut logs: HashSet<String> = HashSet::new();
    let mut running: HashMap<String, (String, String)> = HashMap::new();
    let mut unsynced = false;
    let (mut acks, mut syncs) = (0, 0);
    for line in text.lines() {
        let pid = line.split(' ').next().unwrap_or_default().to_owned();
        if let Some(resumed) = line.split("<... ").nth(1) {
            // The end of a call begun on an earlier line.
            let name = resumed.split(' ').next().unwrap_or_default();
            if let Some((begun, fd)) = running.remove(&pid) {
                if begun == name && logs.contains(&fd) {
                    match name {
                        "write" | "pwrite64" | "writev" => unsynced = true,
                        "fdatasync" | "fsync" => {
                            unsynced = false;
                            syncs += 1;
                        }
                        _ => {}
                    }
                }
            }
            continue;
        }
        let Some((name, first)) = call(line) else {
            continue;
        };
        if line.contains("<unfinished ...>") {
            if name == "close" {
                logs.remove(first);
            }
            running.insert(pid, (name.to_owned(), first.to_owned()));
            if name == "write" && first == "2" && line.contains("checkpoint: prepared epoch") {
                acks += 1;
                assert!(
                    !unsynced,
                    "acknowledged before its batch was synced: {line}"
                );
            }
            continue;
        }
        let result = line.rsplit(" = ").next().unwrap_or_default().trim();
        match name {
            "openat" if line.contains(".log\"") && line.contains("O_WRONLY") => {
                logs.insert(result.split(' ').next().unwrap_or_default().to_owned());
            }
            "close" => {
                logs.remove(first);
            }
            "write" if first == "2" && line.contains("checkpoint: prepared epoch") => {
                acks += 1;
                assert!(
                    !unsynced,
                    "acknowledged before its batch was synced: {line}"
                );
            }
            "write" | "pwrite64" | "writev" if logs.contains(first) => unsynced = true,
            "fdatasync" | "fsync" if logs.contains(first) => {
                unsynced = false;
                syncs += 1;
            }
            _ => {}
        }
    }
    assert!(acks >= 5, "only {acks} acknowledgements traced");
    assert!(
        syncs >= acks / 2,
        "{syncs} log syncs for {acks} acknowledgements"
    );
    eprintln!("{acks} acknowledgements, each after its log was synced ({syncs} syncs)");
}
