//! Round trip through the real test broker: 100,000 JSON orders on a
//! 4-partition topic, `route_orders` (filter, map, branch) into three topics,
//! read back and compared exactly with a sequential computation, with
//! per-key order checked. Once with 2 worker threads, once with 2 processes
//! of 1 worker (timely cluster mode on 127.0.0.1).

use rill::testing::kafka::{bootstrap, create_topic, produce, read_topic, unique_topic};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const RECORDS: u64 = 100_000;
const CUSTOMERS: u64 = 997;

struct Topics {
    input: String,
    big: String,
    eu: String,
    other: String,
}

/// The orders produced: (customer key, order JSON).
fn orders() -> Vec<(String, Value)> {
    (0..RECORDS)
        .map(|id| {
            let x = id
                .wrapping_mul(2862933555777941757)
                .wrapping_add(3037000493);
            let customer = format!("c{}", (x >> 17) % CUSTOMERS);
            let region = ["eu", "us", "apac"][((x >> 29) % 3) as usize];
            let order = json!({
                "id": id,
                "region": region,
                "cents": ((x >> 35) % 80_000) as i64,
                "cancelled": (x >> 50) % 7 == 0,
            });
            (customer, order)
        })
        .collect()
}

/// The sequential computation the job must match: topic role -> (key, taxed JSON).
fn expected(orders: &[(String, Value)]) -> BTreeMap<&'static str, Vec<(String, Value)>> {
    let mut out: BTreeMap<&'static str, Vec<(String, Value)>> = BTreeMap::new();
    for (key, o) in orders {
        if o["cancelled"].as_bool().unwrap() {
            continue;
        }
        let cents = o["cents"].as_i64().unwrap();
        let total = cents + cents / 10;
        let taxed = json!({"id": o["id"], "region": o["region"], "total_cents": total});
        let role = if total >= 50_000 {
            "big"
        } else if o["region"] == "eu" {
            "eu"
        } else {
            "other"
        };
        out.entry(role).or_default().push((key.clone(), taxed));
    }
    out
}

fn setup(brokers: &str, tag: &str) -> Topics {
    let t = Topics {
        input: unique_topic(&format!("{tag}-orders")),
        big: unique_topic(&format!("{tag}-big")),
        eu: unique_topic(&format!("{tag}-eu")),
        other: unique_topic(&format!("{tag}-other")),
    };
    for topic in [&t.input, &t.big, &t.eu, &t.other] {
        create_topic(brokers, topic, 4);
    }
    let encoded: Vec<(String, Vec<u8>)> = orders()
        .into_iter()
        .map(|(k, v)| (k, serde_json::to_vec(&v).unwrap()))
        .collect();
    produce(
        brokers,
        &t.input,
        encoded
            .iter()
            .map(|(k, v)| (Some(k.as_bytes()), v.as_slice())),
    );
    t
}

fn job(brokers: &str, t: &Topics) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_route_orders"));
    cmd.args([
        "--brokers",
        brokers,
        "--stop-at-end",
        "--epoch-interval",
        "200ms",
    ])
    .args([
        "--input", &t.input, "--big", &t.big, "--eu", &t.eu, "--other", &t.other,
    ])
    .env_remove("RILL_WORKERS")
    .env("RUST_LOG", "warn");
    cmd
}

fn wait_all(mut children: Vec<Child>, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !children.is_empty() {
        let mut i = 0;
        while i < children.len() {
            if let Some(status) = children[i].try_wait().unwrap() {
                assert!(status.success(), "a job process failed: {status}");
                let _ = children.remove(i).wait();
            } else {
                i += 1;
            }
        }
        if Instant::now() > deadline {
            for c in &mut children {
                let _ = c.kill();
            }
            panic!("the job did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn check(brokers: &str, t: &Topics) {
    let all = orders();
    let want = expected(&all);
    let mut total = 0;
    for (role, topic) in [("big", &t.big), ("eu", &t.eu), ("other", &t.other)] {
        let records = read_topic(brokers, topic);
        let got: Vec<(String, Value)> = records
            .iter()
            .map(|r| {
                let key = String::from_utf8(r.key.clone().expect("output has keys")).unwrap();
                let value: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
                (key, value)
            })
            .collect();
        let expected = &want[role];
        total += got.len();
        // Exactly the expected records...
        let mut a: Vec<String> = got.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let mut b: Vec<String> = expected.iter().map(|(k, v)| format!("{k} {v}")).collect();
        a.sort();
        b.sort();
        assert_eq!(a.len(), b.len(), "{role}: record count");
        assert!(
            a == b,
            "{role}: records differ from the sequential computation"
        );
        // ...and per key, in input order (ids increase within a partition).
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        for (k, v) in &got {
            let id = v["id"].as_u64().unwrap();
            if let Some(prev) = last.insert(k, id) {
                assert!(prev < id, "{role}: key {k}: id {id} after {prev}");
            }
        }
    }
    let kept = all
        .iter()
        .filter(|(_, o)| !o["cancelled"].as_bool().unwrap())
        .count();
    assert_eq!(total, kept);
}

#[test]
fn two_workers_one_process() {
    let brokers = bootstrap();
    let t = setup(&brokers, "rt-w2");
    let child = job(&brokers, &t).args(["-w", "2"]).spawn().unwrap();
    wait_all(vec![child], Duration::from_secs(300));
    check(&brokers, &t);
}

#[test]
fn two_processes_one_worker_each() {
    let brokers = bootstrap();
    let t = setup(&brokers, "rt-n2");
    let dir = std::env::temp_dir().join(unique_topic("rill-hosts"));
    std::fs::create_dir_all(&dir).unwrap();
    let hosts = dir.join("hosts.txt");
    rill::testing::write_local_hosts(&hosts, 2).unwrap();
    let children = (0..2)
        .map(|p| {
            job(&brokers, &t)
                .args(["-w", "1", "-n", "2", "-p", &p.to_string()])
                .arg("--hosts")
                .arg(&hosts)
                .spawn()
                .unwrap()
        })
        .collect();
    wait_all(children, Duration::from_secs(300));
    check(&brokers, &t);
    std::fs::remove_dir_all(&dir).unwrap();
}
