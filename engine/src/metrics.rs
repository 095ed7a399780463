//! The engine's Prometheus metrics and the `/metrics` endpoint.
//!
//! Names follow `rill_<what>_<unit>`; labels are bounded (step, worker).

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::{Error, Result};

/// Label: the step name.
pub const LABEL_STEP: &str = "step";
/// Label: the global worker index.
pub const LABEL_WORKER: &str = "worker";

/// The engine's metric families, registered once per process.
#[derive(Clone)]
pub struct Metrics {
    /// The registry they live in.
    pub registry: Registry,
    /// `rill_step_records_in_total{step,worker}`.
    pub records_in: IntCounterVec,
    /// `rill_step_records_out_total{step,worker}`.
    pub records_out: IntCounterVec,
    /// `rill_source_records_skipped_total{step,worker}`: undecodable records skipped.
    pub skipped: IntCounterVec,
    /// `rill_source_records_dead_lettered_total{step,worker}`.
    pub dead_lettered: IntCounterVec,
    /// `rill_window_late_records_total{step,worker}`: records that came
    /// after every window they belong to had closed (the `late` output).
    pub late: IntCounterVec,
    /// `rill_epoch_current{worker}`: the epoch each worker's sources are in.
    pub epoch: IntGaugeVec,
    /// `rill_checkpoint_duration_seconds{worker}`: time to write a worker's batch.
    pub checkpoint_duration: HistogramVec,
    /// `rill_checkpoint_size_bytes{worker}`: bytes in a worker's last batch.
    pub checkpoint_bytes: IntGaugeVec,
    /// `rill_checkpoint_complete_epoch`: the last complete checkpoint.
    pub checkpoint_complete: IntGauge,
    /// `rill_resume_epoch`: the checkpoint the job resumed from (-1: none).
    pub resume_epoch: IntGauge,
    /// `rill_state_keys{step,worker}`: live keys of a stateful step, as of
    /// the worker's last checkpoint.
    pub state_keys: IntGaugeVec,
    /// `rill_state_bytes{step}`: bytes a stateful step's state takes in
    /// this process's store, as of its last checkpoint (RocksDB: its
    /// estimate for the step's keys in table files; what is still in the
    /// memtable, up to 64 MiB of recent small checkpoints, is left out).
    pub state_bytes: IntGaugeVec,
    /// `rill_kafka_consumer_lag{topic,partition}`: records between a Kafka
    /// source's position and the partition's high watermark, at the last
    /// epoch close.
    pub consumer_lag: IntGaugeVec,
    /// `rill_checkpoint_complete_timestamp_seconds`: when the last
    /// checkpoint completed (its age: `time() - this`).
    pub checkpoint_complete_time: IntGauge,
    /// `rill_restarts`: how many times `rill run` restarted the job before
    /// this start.
    pub restarts: IntGauge,
}

impl Metrics {
    /// Registers the families in `registry`.
    pub fn new(registry: Registry) -> Self {
        let counter = |name: &str, help: &str| {
            let c = IntCounterVec::new(Opts::new(name, help), &[LABEL_STEP, LABEL_WORKER])
                .expect("metric names are valid");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let records_in = counter("rill_step_records_in_total", "Records consumed by a step.");
        let records_out = counter("rill_step_records_out_total", "Records produced by a step.");
        let skipped = counter(
            "rill_source_records_skipped_total",
            "Records that failed to decode and were skipped.",
        );
        let dead_lettered = counter(
            "rill_source_records_dead_lettered_total",
            "Records that failed to decode and went to the dead-letter topic.",
        );
        let late = counter(
            "rill_window_late_records_total",
            "Records too late for every window they belong to.",
        );
        let epoch = IntGaugeVec::new(
            Opts::new("rill_epoch_current", "The epoch a worker's sources are in."),
            &[LABEL_WORKER],
        )
        .expect("metric names are valid");
        registry
            .register(Box::new(epoch.clone()))
            .expect("registered once");
        let checkpoint_duration = HistogramVec::new(
            HistogramOpts::new(
                "rill_checkpoint_duration_seconds",
                "Time to write one worker's checkpoint batch (synced).",
            )
            .buckets(prometheus::exponential_buckets(0.001, 2.0, 14).expect("valid buckets")),
            &[LABEL_WORKER],
        )
        .expect("metric names are valid");
        let checkpoint_bytes = IntGaugeVec::new(
            Opts::new(
                "rill_checkpoint_size_bytes",
                "Key and value bytes in a worker's last checkpoint batch.",
            ),
            &[LABEL_WORKER],
        )
        .expect("metric names are valid");
        let checkpoint_complete = IntGauge::new(
            "rill_checkpoint_complete_epoch",
            "The last epoch every worker has prepared.",
        )
        .expect("metric names are valid");
        let resume_epoch = IntGauge::new(
            "rill_resume_epoch",
            "The checkpoint epoch the job resumed from (-1 for a fresh start).",
        )
        .expect("metric names are valid");
        let state_keys = IntGaugeVec::new(
            Opts::new(
                "rill_state_keys",
                "Live keys of a stateful step on a worker, as of its last checkpoint.",
            ),
            &[LABEL_STEP, LABEL_WORKER],
        )
        .expect("metric names are valid");
        let state_bytes = IntGaugeVec::new(
            Opts::new(
                "rill_state_bytes",
                "Bytes of a stateful step's state in this process's store's table files, as of the last checkpoint.",
            ),
            &[LABEL_STEP],
        )
        .expect("metric names are valid");
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                "rill_kafka_consumer_lag",
                "Records between a Kafka source's position and the partition's high watermark.",
            ),
            &["topic", "partition"],
        )
        .expect("metric names are valid");
        let checkpoint_complete_time = IntGauge::new(
            "rill_checkpoint_complete_timestamp_seconds",
            "When the last checkpoint completed, in seconds since the Unix epoch.",
        )
        .expect("metric names are valid");
        let restarts = IntGauge::new(
            "rill_restarts",
            "Restarts of the job by rill run before this start.",
        )
        .expect("metric names are valid");
        restarts.set(
            std::env::var("RILL_RESTARTS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
        );
        for m in [
            Box::new(consumer_lag.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(checkpoint_complete_time.clone()),
            Box::new(restarts.clone()),
            Box::new(state_keys.clone()),
            Box::new(state_bytes.clone()),
            Box::new(checkpoint_duration.clone()),
            Box::new(checkpoint_bytes.clone()),
            Box::new(checkpoint_complete.clone()),
            Box::new(resume_epoch.clone()),
        ] {
            registry.register(m).expect("registered once");
        }
        Metrics {
            consumer_lag,
            checkpoint_complete_time,
            restarts,
            state_keys,
            state_bytes,
            checkpoint_duration,
            checkpoint_bytes,
            checkpoint_complete,
            resume_epoch,
            registry,
            records_in,
            records_out,
            skipped,
            dead_lettered,
            late,
            epoch,
        }
    }

    /// The registry's contents in Prometheus text format.
    pub fn render(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
    }
}

/// Serves `/metrics` from a tokio runtime on its own thread, never a worker.
pub struct MetricsServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port) and starts serving.
    pub fn start(addr: &str, metrics: Arc<Metrics>) -> Result<Self> {
        let bind_err = |source| Error::Metrics {
            addr: addr.to_owned(),
            source,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(bind_err)?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move { metrics.render() }
            }),
        );
        let thread = std::thread::Builder::new()
            .name("rill-metrics".into())
            .spawn(move || {
                let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                    let _ = rx.await;
                });
                if let Err(e) = runtime.block_on(serve.into_future()) {
                    log::error!("metrics endpoint stopped: {e}");
                }
            })
            .map_err(bind_err)?;
        log::info!("metrics at http://{local}/metrics");
        Ok(MetricsServer {
            addr: local,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
