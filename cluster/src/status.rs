//! `rill status --metrics URL[,URL...]`: a live view of a running job from
//! its processes' metrics endpoints — records per second per step, Kafka
//! consumer lag, epochs and the age of the last complete checkpoint —
//! redrawn in place; `--once` prints one snapshot.

use anyhow::{bail, Context, Result};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One sample of a scrape: family, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric family (`rill_step_records_out_total`).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// The samples of a Prometheus text exposition (comments and malformed
/// lines are skipped).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.trim().parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, labels(rest.strip_suffix('}')?)),
                None => (series, BTreeMap::new()),
            };
            Some(Sample {
                name: name.to_owned(),
                labels,
                value,
            })
        })
        .collect()
}

/// `k="v",k2="v2"` (values without commas or escaped quotes, as Rill's
/// labels are).
fn labels(text: &str) -> BTreeMap<String, String> {
    text.split("\",")
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.trim().to_owned(), v.trim_matches('"').to_owned()))
        })
        .collect()
}

/// The body of `GET url` (`http://host:port/metrics`, or `host:port`).
async fn fetch(url: &str) -> Result<String> {
    let url = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}/metrics")
    };
    let uri: hyper::Uri = url.parse().with_context(|| format!("{url} is not a URL"))?;
    let host = uri.host().context("no host in the URL")?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let path = uri.path_and_query().map_or("/metrics", |p| p.as_str());
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, format!("{host}:{port}"))
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// One scrape of every endpoint: its samples, or why it could not be read.
struct Snapshot {
    at: Instant,
    scrapes: Vec<(String, std::result::Result<Vec<Sample>, String>)>,
}

impl Snapshot {
    fn take(runtime: &tokio::runtime::Runtime, urls: &[String]) -> Snapshot {
        let scrapes = urls
            .iter()
            .map(|url| {
                let got = runtime.block_on(async {
                    tokio::time::timeout(Duration::from_secs(5), fetch(url)).await
                });
                let got = match got {
                    Ok(Ok(text)) => Ok(parse(&text)),
                    Ok(Err(e)) => Err(format!("{e:#}")),
                    Err(_) => Err("no answer within 5 s".to_owned()),
                };
                (url.clone(), got)
            })
            .collect();
        Snapshot {
            at: Instant::now(),
            scrapes,
        }
    }

    fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.scrapes
            .iter()
            .filter_map(|(_, s)| s.as_ref().ok())
            .flatten()
    }

    /// The sum of `name` over all endpoints, per value of `label`.
    fn by(&self, name: &str, label: &[&str]) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for s in self.samples().filter(|s| s.name == name) {
            let key: Vec<&str> = label
                .iter()
                .map(|l| s.labels.get(*l).map_or("", String::as_str))
                .collect();
            *out.entry(key.join("/")).or_insert(0.0) += s.value;
        }
        out
    }

    fn max(&self, name: &str) -> Option<f64> {
        self.samples()
            .filter(|s| s.name == name)
            .map(|s| s.value)
            .reduce(f64::max)
    }
}

/// The view of `now`, with rates since `before`.
fn render(before: &Snapshot, now: &Snapshot) -> String {
    let mut out = String::new();
    let up = now.scrapes.iter().filter(|(_, s)| s.is_ok()).count();
    let _ = writeln!(
        out,
        "rill status: {up} of {} processes answer",
        now.scrapes.len()
    );
    for (url, scrape) in &now.scrapes {
        if let Err(e) = scrape {
            let _ = writeln!(out, "  {url}: unreachable ({e})");
        }
    }
    let epoch = |v: Option<f64>| v.map_or("-".to_owned(), |e| format!("{e:.0}"));
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let age = now
        .max("rill_checkpoint_complete_timestamp_seconds")
        .filter(|t| *t > 0.0)
        .map_or("-".to_owned(), |t| {
            format!("{:.0} s ago", (unix - t).max(0.0))
        });
    let _ = writeln!(
        out,
        "epoch {}   last complete checkpoint {} ({age})   resumed from {}   restarts {}",
        epoch(now.max("rill_epoch_current")),
        epoch(now.max("rill_checkpoint_complete_epoch")),
        epoch(now.max("rill_resume_epoch").filter(|e| *e >= 0.0)),
        epoch(now.max("rill_restarts")),
    );
    let seconds = now.at.duration_since(before.at).as_secs_f64().max(1e-3);
    let rate = |name: &str| -> BTreeMap<String, f64> {
        let (then, now) = (before.by(name, &["step"]), now.by(name, &["step"]));
        now.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    (v - then.get(k).copied().unwrap_or(*v)).max(0.0) / seconds,
                )
            })
            .collect()
    };
    let (ins, outs) = (
        rate("rill_step_records_in_total"),
        rate("rill_step_records_out_total"),
    );
    let _ = writeln!(out, "\n{:<40} {:>14} {:>14}", "step", "in/s", "out/s");
    let steps: std::collections::BTreeSet<&String> = ins.keys().chain(outs.keys()).collect();
    for step in steps {
        let cell =
            |m: &BTreeMap<String, f64>| m.get(step).map_or("-".to_owned(), |v| format!("{v:.0}"));
        let _ = writeln!(out, "{step:<40} {:>14} {:>14}", cell(&ins), cell(&outs));
    }
    let lag = now.by("rill_kafka_consumer_lag", &["topic", "partition"]);
    // (An empty sum of floats is -0.)
    let total: f64 = lag.values().sum::<f64>() + 0.0;
    let _ = writeln!(out, "\nconsumer lag: {total:.0} records");
    for (partition, records) in lag.iter().filter(|(_, v)| **v > 0.0) {
        let _ = writeln!(out, "  {partition:<38} {records:>14.0}");
    }
    out
}

/// Runs the view until interrupted (or once).
pub fn run(urls: &[String], once: bool, every: Duration) -> Result<()> {
    if urls.is_empty() {
        bail!("give --metrics URL[,URL...] (each process's metrics endpoint)");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut before = Snapshot::take(&runtime, urls);
    loop {
        std::thread::sleep(every);
        let now = Snapshot::take(&runtime, urls);
        let view = render(&before, &now);
        if once {
            print!("{view}");
            if now.scrapes.iter().all(|(_, s)| s.is_err()) {
                bail!("no metrics endpoint answered");
            }
            return Ok(());
        }
        // Redraw in place: cursor home, clear the screen.
        print!("\x1b[H\x1b[2J{view}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        before = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_parses_into_samples() {
        let text = "# HELP x y\n# TYPE rill_epoch_current gauge\nrill_epoch_current{worker=\"0\"} 7\n\
                    rill_restarts 2\nrill_step_records_out_total{step=\"a.b\",worker=\"1\"} 1e3\nbroken\n";
        let samples = parse(text);
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].labels["worker"], "0");
        assert_eq!(samples[0].value, 7.0);
        assert!(samples[1].labels.is_empty());
        assert_eq!(samples[2].labels["step"], "a.b");
        assert_eq!(samples[2].value, 1000.0);
    }

    #[test]
    fn rates_are_per_second_between_two_snapshots() {
        let scrape = |v: f64| {
            vec![Sample {
                name: "rill_step_records_out_total".into(),
                labels: [("step".to_owned(), "sums".to_owned())].into(),
                value: v,
            }]
        };
        let t = Instant::now();
        let before = Snapshot {
            at: t,
            scrapes: vec![("a".into(), Ok(scrape(100.0)))],
        };
        let now = Snapshot {
            at: t + Duration::from_secs(2),
            scrapes: vec![
                ("a".into(), Ok(scrape(500.0))),
                ("b".into(), Err("down".into())),
            ],
        };
        let view = render(&before, &now);
        assert!(view.contains("1 of 2 processes answer"), "{view}");
        assert!(view.contains("b: unreachable (down)"), "{view}");
        let line = view.lines().find(|l| l.starts_with("sums")).unwrap();
        assert!(line.trim_end().ends_with("200"), "{view}");
    }
}
