//! An error and a panic in user logic each end a two-process job within
//! seconds: every process exits with a failure, and the failing one names
//! the step and the key.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn two_processes(extra: &[&str]) -> Vec<(std::process::ExitStatus, String)> {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts.txt");
    rill::testing::write_local_hosts(&hosts, 2).unwrap();
    let started = Instant::now();
    let children: Vec<_> = (0..2)
        .map(|p| {
            Command::new(env!("CARGO_BIN_EXE_fault_injection"))
                .args(["-n", "2", "-w", "1", "-p", &p.to_string()])
                .arg("--hosts")
                .arg(&hosts)
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ended = Vec::new();
    for mut child in children {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut log = String::new();
                use std::io::Read;
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut log)
                    .unwrap();
                ended.push((status, log));
                break;
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("a process still ran 20 s after the failure");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    eprintln!("both processes ended in {:.1?}", started.elapsed());
    ended
}

fn check(extra: &[&str], what: &str) {
    let ended = two_processes(extra);
    for (status, log) in &ended {
        assert!(
            !status.success(),
            "a process exited 0 after the failure:\n{log}"
        );
    }
    let named = ended.iter().any(|(_, log)| {
        log.contains("step checked, key 3") && log.contains(what) && log.contains("poison")
    });
    assert!(
        named,
        "no process named the step and key:\n{}\n---\n{}",
        ended[0].1, ended[1].1
    );
}

#[test]
fn an_error_in_user_logic_ends_both_processes_naming_the_step_and_key() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    check(&["--state-dir", dir], "the step's logic failed");
}

#[test]
fn a_panic_in_user_logic_ends_both_processes_naming_the_step_and_key() {
    check(&["--panic"], "the step's logic panicked");
}
