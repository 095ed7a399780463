//! The flags every Rill job binary understands.

use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::{Error, Result};

/// The common flags of a Rill job; each also reads an environment variable,
/// so a binary runs unchanged in a container (process id from a pod ordinal).
///
/// Embed them in a job's own clap parser with `#[command(flatten)]`; the
/// job's own `about` stays its `--help` description.
#[derive(Debug, Clone, Args)]
#[command(about = None, long_about = None)]
pub struct JobArgs {
    /// Worker threads per process.
    #[arg(short = 'w', long, env = "RILL_WORKERS", default_value_t = 1)]
    pub workers: usize,
    /// Number of processes in the cluster.
    #[arg(short = 'n', long, env = "RILL_PROCESSES", default_value_t = 1)]
    pub processes: usize,
    /// This process's index, in 0..processes.
    #[arg(short = 'p', long, env = "RILL_PROCESS_ID", default_value_t = 0)]
    pub process_id: usize,
    /// A file with one host:port per line, one line per process.
    #[arg(long, env = "RILL_HOSTS")]
    pub hosts: Option<PathBuf>,
    /// Instead of --hosts: the processes' addresses as one pattern, `{i}`
    /// standing for the process index, e.g. a Kubernetes headless service's
    /// `cart-{i}.cart.default.svc.cluster.local:2101`.
    #[arg(long, env = "RILL_PEERS", conflicts_with = "hosts")]
    pub peers: Option<String>,
    /// Take --process-id from the number after the last `-` of the host
    /// name (a Kubernetes StatefulSet pod's ordinal: `cart-2` is process 2).
    #[arg(long, env = "RILL_PROCESS_ID_FROM_HOSTNAME")]
    pub process_id_from_hostname: bool,
    /// Kafka bootstrap servers (host:port,...).
    #[arg(long, env = "RILL_BROKERS")]
    pub brokers: Option<String>,
    /// A librdkafka property for every Kafka client of the job, as
    /// KEY=VALUE (repeatable), e.g. `--kafka security.protocol=SASL_SSL`.
    /// Also read from `RILL_KAFKA_<KEY>` variables, the key in upper case
    /// with `_` for `.` (`RILL_KAFKA_SASL_USERNAME=...`); a flag wins over a
    /// variable. Secret values (passwords, keys) are never logged.
    #[arg(long = "kafka", value_name = "KEY=VALUE", value_parser = property)]
    pub kafka: Vec<(String, String)>,
    /// After each complete checkpoint, commit its Kafka source offsets to
    /// this consumer group, so that lag tools see the job (it does not join
    /// the group; at resume the checkpoint's offsets are the truth).
    #[arg(long, env = "RILL_GROUP_ID")]
    pub group_id: Option<String>,
    /// Where the job keeps its state and checkpoints (one RocksDB store per
    /// process). A job started with an existing state directory resumes
    /// from its last complete checkpoint, with the same or another number
    /// of processes and workers. Without it, state lives in memory only and
    /// is lost when the job stops.
    #[arg(long, env = "RILL_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// How many keys each stateful step keeps in memory per worker; the rest
    /// stay in the state store and are read back on demand.
    #[arg(long, env = "RILL_STATE_CACHE_KEYS", default_value_t = 1_000_000)]
    pub state_cache_keys: usize,
    /// Key groups for new state (default 256). Resuming, the count is read
    /// from the state; a different one given here is an error.
    #[arg(long, env = "RILL_KEY_GROUPS")]
    pub key_groups: Option<u32>,
    /// How often each process copies its state store beside it
    /// (`DIR/process-N.snapshot`, the fallback if the store is ever
    /// damaged), e.g. 60s; 0s copies after every checkpoint. A resumed job
    /// also copies its store after its first checkpoint.
    #[arg(long, env = "RILL_STATE_COPY_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub state_copy_interval: Duration,
    /// How often sources close an epoch, e.g. 1s or 250ms.
    #[arg(long, env = "RILL_EPOCH_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub epoch_interval: Duration,
    /// Also close an epoch once a source worker has read this many records
    /// in it. Sources run at most about two epochs ahead of the job, so this
    /// bounds the input in flight and how far event time (and the windows
    /// it opens) moves per epoch while input is read faster than the job
    /// keeps up, at the cost of more, smaller checkpoints.
    #[arg(long, env = "RILL_EPOCH_MAX_RECORDS")]
    pub epoch_max_records: Option<u64>,
    /// Hold back a source worker whose watermark runs more than this far
    /// ahead of the least watermark of the same source's other workers in
    /// its process (e.g. 10s): windows the fast worker opens wait in state
    /// for the slow one. Off by default.
    #[arg(long, env = "RILL_MAX_WATERMARK_DRIFT", value_parser = humantime::parse_duration)]
    pub max_watermark_drift: Option<Duration>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, env = "RILL_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Default dead-letter topic for records that fail to decode.
    #[arg(long, env = "RILL_DEAD_LETTER_TOPIC")]
    pub dead_letter_topic: Option<String>,
    /// Read Kafka sources only up to the end offsets seen at start-up, then finish.
    #[arg(long, env = "RILL_STOP_AT_END")]
    pub stop_at_end: bool,
    /// How Kafka sinks deliver (a sink may choose its own with
    /// `kafka_sink_with`): `at-least-once` produces output as soon as it is
    /// computed; `exactly-once` keeps each epoch's output in the checkpoint
    /// and publishes it once the checkpoint is complete (needs --state-dir).
    #[arg(long, env = "RILL_DELIVERY", value_enum, default_value_t = Delivery::AtLeastOnce)]
    pub delivery: Delivery,
    /// Print the job's dataflow (`mermaid`, the default, or `dot`) and exit,
    /// connecting to nothing.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "mermaid")]
    pub graph: Option<crate::GraphFormat>,
}

/// How a Kafka sink delivers its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Delivery {
    /// Output is produced as soon as it is computed; after a crash, what
    /// was produced since the last complete checkpoint is produced again.
    /// Lowest latency.
    #[default]
    AtLeastOnce,
    /// Every record appears exactly once in the topic, whatever the crash
    /// point, for any consumer (no transactions, no `read_committed`):
    /// output becomes visible once its epoch's checkpoint is complete.
    ExactlyOnce,
}

/// A Kafka sink's own settings ([`crate::Stream::kafka_sink_with`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkOptions {
    /// How the sink delivers (`None`: the job's `--delivery`).
    pub delivery: Option<Delivery>,
    /// librdkafka properties for this sink's producer only, applied after
    /// the job's (`--kafka`).
    pub properties: BTreeMap<String, String>,
}

impl From<Delivery> for SinkOptions {
    fn from(delivery: Delivery) -> Self {
        SinkOptions {
            delivery: Some(delivery),
            properties: BTreeMap::new(),
        }
    }
}

impl Default for JobArgs {
    fn default() -> Self {
        JobArgs {
            workers: 1,
            processes: 1,
            process_id: 0,
            hosts: None,
            peers: None,
            process_id_from_hostname: false,
            brokers: None,
            kafka: Vec::new(),
            group_id: None,
            state_dir: None,
            state_cache_keys: 1_000_000,
            key_groups: None,
            state_copy_interval: Duration::from_secs(60),
            epoch_interval: Duration::from_secs(1),
            epoch_max_records: None,
            max_watermark_drift: None,
            metrics_addr: None,
            dead_letter_topic: None,
            stop_at_end: false,
            delivery: Delivery::AtLeastOnce,
            graph: None,
        }
    }
}

/// Parses a `--kafka KEY=VALUE`.
fn property(text: &str) -> std::result::Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "expected KEY=VALUE (a librdkafka property), got {text:?}"
        )),
    }
}

/// The ordinal at the end of a StatefulSet pod's host name (`cart-2` → 2).
fn ordinal(hostname: &str) -> Option<usize> {
    hostname.trim().rsplit_once('-')?.1.parse().ok()
}

/// The addresses of `processes` processes from a `{i}` pattern.
fn expand_peers(pattern: &str, processes: usize) -> Result<Vec<String>> {
    if !pattern.contains("{i}") {
        return Err(Error::Config(format!(
            "--peers {pattern:?} has no {{i}} for the process index"
        )));
    }
    Ok((0..processes)
        .map(|i| pattern.replace("{i}", &i.to_string()))
        .collect())
}

impl JobArgs {
    /// Applies `--process-id-from-hostname` (reading `HOSTNAME`, else the
    /// kernel's host name).
    pub fn resolve(&mut self) -> Result<()> {
        if !self.process_id_from_hostname {
            return Ok(());
        }
        let name = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .unwrap_or_default();
        self.process_id = ordinal(&name).ok_or_else(|| {
            Error::Config(format!(
                "--process-id-from-hostname: host name {:?} does not end in -N",
                name.trim()
            ))
        })?;
        Ok(())
    }

    /// The librdkafka properties for every client: the `RILL_KAFKA_<KEY>`
    /// variables, then the `--kafka` flags.
    pub fn kafka_properties(&self) -> BTreeMap<String, String> {
        let from_env = std::env::vars().filter_map(|(name, value)| {
            let key = name.strip_prefix("RILL_KAFKA_")?;
            Some((key.to_lowercase().replace('_', "."), value))
        });
        from_env.chain(self.kafka.iter().cloned()).collect()
    }

    /// Checks that the flags fit together, and reads the hosts file.
    /// Returns the process addresses (empty for a single process).
    pub fn validate(&self) -> Result<Vec<String>> {
        if self.workers == 0 {
            return Err(Error::Config("--workers must be at least 1".into()));
        }
        if self.processes == 0 {
            return Err(Error::Config("--processes must be at least 1".into()));
        }
        if self.process_id >= self.processes {
            return Err(Error::Config(format!(
                "--process-id {} is out of range for --processes {}",
                self.process_id, self.processes
            )));
        }
        if self.epoch_max_records == Some(0) {
            return Err(Error::Config(
                "--epoch-max-records must be at least 1".into(),
            ));
        }
        if self.epoch_interval.is_zero() {
            return Err(Error::Config("--epoch-interval must be positive".into()));
        }
        if self.state_cache_keys == 0 {
            return Err(Error::Config(
                "--state-cache-keys must be at least 1".into(),
            ));
        }
        if self.group_id.is_some() && self.state_dir.is_none() {
            return Err(Error::Config(
                "--group-id commits the offsets of complete checkpoints: it needs --state-dir"
                    .into(),
            ));
        }
        if let Some(k) = self.key_groups {
            rill_state::KeyGroups::new(k)
                .map_err(|e| Error::Config(format!("--key-groups: {e}")))?;
        }
        if self.processes == 1 {
            return Ok(Vec::new());
        }
        if let Some(pattern) = &self.peers {
            return expand_peers(pattern, self.processes);
        }
        let path = self.hosts.as_ref().ok_or_else(|| {
            Error::Config(format!(
                "--processes {} needs --hosts FILE with one host:port per process (or --peers PATTERN)",
                self.processes
            ))
        })?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read --hosts {}: {e}", path.display())))?;
        let hosts: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        if hosts.len() != self.processes {
            return Err(Error::Config(format!(
                "--hosts {} lists {} hosts but --processes is {}",
                path.display(),
                hosts.len(),
                self.processes
            )));
        }
        Ok(hosts)
    }

    /// Total workers over all processes.
    pub fn total_workers(&self) -> usize {
        self.workers * self.processes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        job: JobArgs,
    }

    #[test]
    fn parses_flags_and_rejects_bad_combinations() {
        let cli = Cli::try_parse_from(["job", "-w", "3", "--epoch-interval", "250ms"]).unwrap();
        assert_eq!(cli.job.workers, 3);
        assert_eq!(cli.job.epoch_interval, Duration::from_millis(250));
        assert!(cli.job.validate().unwrap().is_empty());
        assert!(Cli::try_parse_from(["job", "--epoch-interval", "soon"]).is_err());
        let cli = Cli::try_parse_from(["job", "-n", "2", "-p", "2"]).unwrap();
        assert!(cli
            .job
            .validate()
            .unwrap_err()
            .to_string()
            .contains("out of range"));
        let cli = Cli::try_parse_from(["job", "-n", "2"]).unwrap();
        assert!(cli
            .job
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--hosts"));
    }

    #[test]
    fn kubernetes_names_give_the_process_id_and_the_peers() {
        assert_eq!(ordinal("cart-totals-2"), Some(2));
        assert_eq!(ordinal("cart-0\n"), Some(0));
        assert_eq!(ordinal("laptop"), None);
        assert_eq!(ordinal("cart-x"), None);
        let peers = expand_peers("cart-{i}.cart.default.svc:2101", 3).unwrap();
        assert_eq!(peers[2], "cart-2.cart.default.svc:2101");
        assert_eq!(peers.len(), 3);
        assert!(expand_peers("cart.svc:2101", 3).is_err());
        let cli = Cli::try_parse_from(["job", "-n", "3", "-p", "1", "--peers", "p-{i}:9"]).unwrap();
        assert_eq!(cli.job.validate().unwrap(), vec!["p-0:9", "p-1:9", "p-2:9"]);
        assert!(Cli::try_parse_from(["job", "--peers", "p-{i}:9", "--hosts", "h"]).is_err());
    }
}
