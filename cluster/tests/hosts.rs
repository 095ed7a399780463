//! Several hosts: three network namespaces joined by veth pairs to a
//! bridge, each running one process of a 3-process job under its own
//! `rill run --hosts FILE` (the file names the namespaces' addresses). The
//! broker is reached from each namespace at its usual address through
//! socat; the state directory is on the path all three share. The process
//! in one namespace is killed mid-stream: the job recovers and its output
//! is exactly an uninterrupted run's. The namespaces, the bridge and the
//! forwarders are removed even when the test fails.
//!
//! Needs root (CAP_NET_ADMIN), iproute2 and socat (`scripts/install-deps.sh`).

mod common;

use common::{
    checkpoints, launch_command, resume_epoch, sum_topics, sums, sums_differ, wait_at_most,
    workspace_binary, Reaper,
};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `ip` with `args`; a failure fails the test.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("iproute2 (`ip`) is installed");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespaces, their links and the forwarders; all removed on drop.
struct Net {
    tag: String,
    subnet: String,
    forwarders: Vec<Child>,
}

impl Net {
    fn namespace(&self, i: usize) -> String {
        format!("{}n{i}", self.tag)
    }

    fn address(&self, i: usize) -> String {
        format!("{}.{}", self.subnet, 10 + i)
    }

    /// A bridge at `SUBNET.1` and `count` namespaces at `SUBNET.10+i`.
    fn create(count: usize) -> Net {
        let id = std::process::id();
        let net = Net {
            tag: format!("rl{}", id % 100_000),
            subnet: format!("10.213.{}", id % 250),
            forwarders: Vec::new(),
        };
        let bridge = format!("{}br", net.tag);
        ip(&["link", "add", &bridge, "type", "bridge"]);
        let gateway = format!("{}.1/24", net.subnet);
        ip(&["addr", "add", &gateway, "dev", &bridge]);
        ip(&["link", "set", &bridge, "up"]);
        for i in 0..count {
            let ns = net.namespace(i);
            let (outer, inner) = (format!("{}v{i}", net.tag), format!("{}p{i}", net.tag));
            ip(&["netns", "add", &ns]);
            ip(&[
                "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ]);
            ip(&["link", "set", &inner, "netns", &ns]);
            ip(&["link", "set", &outer, "master", &bridge, "up"]);
            let address = format!("{}/24", net.address(i));
            ip(&["-n", &ns, "addr", "add", &address, "dev", &inner]);
            ip(&["-n", &ns, "link", "set", &inner, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        net
    }

    /// Makes the broker at `127.0.0.1:PORT` reachable at the same address
    /// inside every namespace: socat in each forwards to the bridge's
    /// address, where socat forwards to the broker.
    fn forward_broker(&mut self, port: u16, count: usize) {
        let relay = port + 1;
        let gateway = format!("{}.1", self.subnet);
        let socat = |args: Vec<String>| {
            Command::new("socat")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("socat is installed")
        };
        self.forwarders.push(socat(vec![
            format!("TCP-LISTEN:{relay},bind={gateway},fork,reuseaddr"),
            format!("TCP:127.0.0.1:{port}"),
        ]));
        for i in 0..count {
            let mut inside = Command::new("ip");
            inside
                .args(["netns", "exec", &self.namespace(i), "socat"])
                .args([
                    format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"),
                    format!("TCP:{gateway}:{relay}"),
                ]);
            self.forwarders.push(
                inside
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("socat is installed"),
            );
        }
        // Until each namespace reaches the broker through them.
        let deadline = Instant::now() + Duration::from_secs(20);
        for i in 0..count {
            let probe = format!("exec 3<>/dev/tcp/127.0.0.1/{port}");
            while !Command::new("ip")
                .args(["netns", "exec", &self.namespace(i), "bash", "-c", &probe])
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success()
            {
                assert!(
                    Instant::now() < deadline,
                    "namespace {i} does not reach the broker"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for f in &mut self.forwarders {
            let _ = f.kill();
            let _ = f.wait();
        }
        for i in 0..3 {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.namespace(i)])
                .output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &format!("{}br", self.tag)])
            .output();
    }
}

#[test]
fn a_job_across_three_network_namespaces_recovers_from_a_killed_process_with_exact_results() {
    let brokers = rill::testing::kafka::bootstrap();
    let port: u16 = brokers
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("KAFKA_BOOTSTRAP is host:port");
    let (input, output, expected) = sum_topics(&brokers, "hosts", 300_000, 1_000, 6);
    let mut net = Net::create(3);
    net.forward_broker(port, 3);
    let state = tempfile::tempdir().unwrap();
    let hosts = state.path().join("hosts.txt");
    let lines: String = (0..3)
        .map(|i| format!("{}:7100\n", net.address(i)))
        .collect();
    std::fs::write(&hosts, lines).unwrap();
    let dir = state.path().join("state");
    let key_sums = workspace_binary("key_sums");
    let inside = format!("127.0.0.1:{port}");
    let mut launchers = Vec::new();
    let mut reapers = Vec::new();
    for i in 0..3 {
        let mut command = Command::new("ip");
        command
            .args([
                "netns",
                "exec",
                &net.namespace(i),
                env!("CARGO_BIN_EXE_rill"),
            ])
            .args(["run", "-n", "3", "-w", "1", "--backoff", "200ms", "--hosts"])
            .arg(&hosts)
            .arg("--state-dir")
            .arg(&dir)
            .arg(&key_sums)
            .arg("--")
            .args(["--brokers", &inside, "--input", &input, "--output", &output])
            .args([
                "--stop-at-end",
                "--epoch-interval",
                "100ms",
                "--delivery",
                "exactly-once",
            ]);
        let (launcher, lines, pids) = launch_command(command);
        reapers.push(Reaper(pids.clone()));
        launchers.push((launcher, lines, pids));
    }
    // Mid-stream: once a checkpoint is complete, kill the process in the
    // second namespace.
    let deadline = Instant::now() + Duration::from_secs(120);
    while resume_epoch(&checkpoints(&dir)).is_none() {
        let ended = launchers
            .iter_mut()
            .any(|(l, _, _)| l.try_wait().unwrap().is_some());
        if ended || Instant::now() > deadline {
            let log: Vec<String> = launchers
                .iter()
                .flat_map(|(_, l, _)| l.try_iter())
                .collect();
            panic!("the job never completed a checkpoint:\n{}", log.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let victim = launchers[1].2.lock().unwrap()[0];
    rustix::process::kill_process(victim, rustix::process::Signal::KILL).unwrap();
    let mut logs = Vec::new();
    for (i, (launcher, lines, _)) in launchers.iter_mut().enumerate() {
        let status = wait_at_most(launcher, Duration::from_secs(240));
        std::thread::sleep(Duration::from_millis(100));
        let log: Vec<String> = lines.try_iter().collect();
        let log = log.join("\n");
        assert!(
            status.success(),
            "rill run in namespace {i}: {status}\n{log}"
        );
        assert!(
            log.contains(&format!("this host runs processes [{i}] of 3")),
            "{log}"
        );
        logs.push(log);
    }
    assert!(
        logs[1].contains("restart 1 of 10"),
        "the killed process was not restarted:\n{}",
        logs[1]
    );
    drop(reapers);
    let got = sums(&brokers, &output);
    assert!(
        got == expected,
        "the output differs from an uninterrupted run's: {}",
        sums_differ(&got, &expected)
    );
}
