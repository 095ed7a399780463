//! `Job`: parse the common flags, run the dataflow on every worker, report.

use clap::{CommandFactory, FromArgMatches, Parser};
use prometheus::Registry;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timely::{CommunicationConfig, WorkerConfig};

use crate::checkpoint::checkpoint_operators;
use crate::context::{ProcessShared, WorkerCtx};
use crate::metrics::{Metrics, MetricsServer};
use crate::state::{agree_resume, open_worker, ProcessState};
use crate::stop::{watch_signals, StopHandle};
use crate::writer::ProcessWriter;
use crate::{Error, Flow, JobArgs, Result};
use rill_connectors::kafka::KafkaConfig;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: JobArgs,
}

/// A streaming job: a name, its flags, and (given to [`Job::run`]) the
/// closure that builds its dataflow on every worker.
pub struct Job {
    name: String,
    args: JobArgs,
    stop: StopHandle,
    metrics: Arc<Metrics>,
}

impl Job {
    /// Parses Rill's common flags (and their `RILL_*` environment variables)
    /// from the command line; `--help` prints them. Also sets up logging
    /// (`RUST_LOG`, default `info`).
    pub fn from_args(name: &str) -> Result<Self> {
        let about = format!("The Rill job `{name}`: Rill's common flags");
        let matches = Cli::command().about(about).get_matches();
        let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        Job::new(name, cli.args)
    }

    /// A job with flags parsed elsewhere (for example flattened into the
    /// job's own clap parser) or built in code.
    pub fn new(name: &str, mut args: JobArgs) -> Result<Self> {
        init_logging();
        args.resolve()?;
        args.validate()?;
        Ok(Job {
            name: name.to_owned(),
            args,
            stop: StopHandle::default(),
            metrics: Arc::new(Metrics::new(Registry::new())),
        })
    }

    /// The job's metrics (what `--metrics-addr` serves), to read from the
    /// embedding program while the job runs.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// A handle that stops the job gracefully from any thread, as SIGINT
    /// or SIGTERM do (see [`StopHandle`]).
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Leaves SIGINT and SIGTERM to the application that embeds the job:
    /// [`Job::run`] installs no signal handlers, and signals that handlers
    /// installed by another job in the process catch do not stop this one.
    /// The job then stops only through [`Job::stop_handle`] (or at the end
    /// of bounded input).
    pub fn without_signal_handlers(self) -> Self {
        self.stop.ignore_signals();
        self
    }

    /// The job's flags.
    pub fn args(&self) -> &JobArgs {
        &self.args
    }

    /// Builds the dataflow with `build` on every worker and runs it until
    /// every source is exhausted (bounded sources), the job is stopped, or a
    /// step fails. Returns the first error any worker hit.
    ///
    /// The first SIGINT or SIGTERM stops the job gracefully, as
    /// [`Job::stop_handle`] does: the sources end where they are, the
    /// dataflow drains, the last checkpoint is written, and `run` returns
    /// `Ok`. A second signal ends the process at once. (In a job of
    /// several processes, each process stops its own sources: signal them
    /// all.) [`Job::without_signal_handlers`] turns this off.
    pub fn run<F>(self, build: F) -> Result<()>
    where
        F: Fn(&mut Flow<'_>) + Send + Sync + 'static,
    {
        if let Some(format) = self.args.graph {
            print!(
                "{}",
                crate::graph::render(&self.name, &self.args, format, build)?
            );
            return Ok(());
        }
        let addresses = self.args.validate()?;
        crate::crash::check()?;
        if self.args.processes > 1 {
            watch_connections();
        }
        if self.stop.follows_signals() {
            watch_signals()?;
        }
        let metrics = self.metrics.clone();
        let _server = match &self.args.metrics_addr {
            Some(addr) => Some(MetricsServer::start(addr, metrics.clone())?),
            None => None,
        };
        let args = self.args.clone();
        let communication = if args.processes > 1 {
            CommunicationConfig::Cluster {
                threads: args.workers,
                process: args.process_id,
                addresses,
                report: false,
                zerocopy: false,
            }
        } else if args.workers > 1 {
            CommunicationConfig::Process(args.workers)
        } else {
            CommunicationConfig::Thread
        };
        let config = timely::Config {
            communication,
            worker: WorkerConfig::default(),
        };
        log::info!(
            "job {}: process {} of {}, {} workers each; epochs every {:?}; delivery {:?}; state {}",
            self.name,
            args.process_id,
            args.processes,
            args.workers,
            args.epoch_interval,
            args.delivery,
            args.state_dir
                .as_ref()
                .map_or("in memory".to_owned(), |d| format!("in {}", d.display()))
        );
        if let Some(brokers) = &args.brokers {
            let kafka = KafkaConfig::new(brokers.clone()).with(&args.kafka_properties());
            log::info!("kafka: {}", kafka.describe());
        }
        let started = Instant::now();
        let process_state = Arc::new(ProcessState::open(&args)?);
        let processes = args.processes;
        let writer = match &process_state.store {
            Some(store) => Some(
                ProcessWriter::spawn(
                    store.clone(),
                    &args,
                    process_state
                        .generation
                        .as_ref()
                        .map(|(_, root, _)| root.as_path()),
                    process_state.local_resume.is_some(),
                )
                .map_err(|e| Error::Runtime(format!("cannot start the checkpoint writer: {e}")))?,
            ),
            None => None,
        };
        let shared = Arc::new(ProcessShared::new(
            self.name.clone(),
            args,
            metrics,
            writer,
            self.stop.clone(),
            process_state.key_groups,
        ));
        let worker_shared = shared.clone();
        let guards = timely::execute(config, move |worker| {
            let mut ctx = WorkerCtx::new(worker_shared.clone(), worker.index(), worker.peers());
            if process_state.store.is_some() {
                let (local, last) = (process_state.local_resume, process_state.local_last);
                let (resume, last) = if processes > 1 {
                    agree_resume(worker, local, last)
                } else {
                    (local, last)
                };
                ctx.shared
                    .metrics
                    .resume_epoch
                    .set(resume.map_or(-1, |e| e as i64));
                let args = &ctx.shared.args;
                let opened = open_worker(&process_state, args, worker.index(), resume, last);
                let committed = match worker.index() {
                    0 => opened.and_then(|c| process_state.commit_generation().map(|()| c)),
                    _ => opened,
                };
                match committed {
                    Ok(c) => {
                        ctx.checkpointer = c;
                        ctx.start_epoch = rill_state::checkpoint::first_epoch(last);
                    }
                    Err(e) => ctx.shared.fail(e),
                }
            }
            worker.dataflow::<u64, _, _>(|scope| {
                let mut flow = Flow::new(scope, ctx.clone());
                build(&mut flow);
                let progress = flow.progress();
                checkpoint_operators(scope, &ctx, progress.take(), progress.take_completions());
            });
            if ctx.sink_count() == 0 {
                ctx.shared.fail(Error::Job(
                    "the job has no sink: end at least one stream in a sink (kafka_sink, collect, print)"
                        .into(),
                ));
            }
            while worker.has_dataflows() && !ctx.shared.aborted() {
                worker.step_or_park(Some(Duration::from_millis(100)));
                if let Some(broken) = connection_broken() {
                    ctx.shared.fail(Error::Runtime(format!(
                        "lost the connection to another process of the job: {broken}"
                    )));
                }
            }
            if ctx.shared.aborted() {
                if processes > 1 {
                    // A worker that ends cleanly tells the other processes
                    // that its part of the job is done, and they would wait
                    // for it forever. It stays until the process exits (see
                    // `join`); the others then lose the connection and stop.
                    loop {
                        std::thread::park();
                    }
                }
                for id in worker.installed_dataflows() {
                    worker.drop_dataflow(id);
                }
            }
        })
        .map_err(Error::Runtime)?;
        let mut panic = None;
        for result in join(guards, &shared, processes) {
            if let Err(message) = result {
                panic.get_or_insert(message);
            }
        }
        // The workers are gone: the writer finishes what it was given and
        // lets go of the store.
        // (A failed process of a cluster leaves its workers parked, holding
        // the writer's senders: it exits without waiting for the writer.)
        if let (Some(w), false) = (&shared.writer, processes > 1 && shared.aborted()) {
            w.close();
        }
        if let Some(e) = shared.take_error() {
            return Err(e);
        }
        if let Some(message) = panic {
            return Err(Error::WorkerPanicked(message));
        }
        if self.stop.is_stopping() {
            log::info!(
                "job {}: stopped on request after {:.1?}{}",
                self.name,
                started.elapsed(),
                if shared.writer.is_some() {
                    "; its last checkpoint holds everything read: run it again with the same \
                     --state-dir to continue"
                } else {
                    ""
                }
            );
        } else {
            log::info!("job {}: finished in {:.1?}", self.name, started.elapsed());
        }
        Ok(())
    }
}

/// The first panic of timely's network threads (a peer process is gone).
static CONNECTION_BROKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Notes panics of timely's network threads. They end only that thread: a
/// worker that sends nothing to the dead peer would wait for it forever.
fn watch_connections() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or_default();
            if message.starts_with("timely communication error") {
                let _ = CONNECTION_BROKEN.set(message.to_owned());
            }
            previous(info);
        }));
    });
}

fn connection_broken() -> Option<&'static String> {
    CONNECTION_BROKEN.get()
}

/// How long a failed process of a cluster waits for its peers to notice.
const PEERS_GRACE: Duration = Duration::from_secs(2);

/// Waits for the workers. In a job of several processes, a failed process
/// cannot wait for its peers: timely has no way to tell them. So once it
/// failed, it waits [`PEERS_GRACE`] (for its workers to stop and its error
/// to be logged) and returns, leaving its threads to end with the process;
/// the peers then lose their connection to it and stop too (and `rill
/// run` restarts them all).
fn join(
    guards: timely::communication::WorkerGuards<()>,
    shared: &Arc<ProcessShared>,
    processes: usize,
) -> Vec<std::result::Result<(), String>> {
    if processes < 2 {
        return guards.join();
    }
    let (done, joined) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(guards.join());
    });
    let mut failed_at: Option<Instant> = None;
    loop {
        match joined.recv_timeout(Duration::from_millis(50)) {
            Ok(results) => return results,
            // Joining panicked: a network thread died (a peer is gone).
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return vec![Err(
                    "the connection to another process of the job broke".into()
                )]
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if shared.aborted() {
            let since = *failed_at.get_or_insert_with(Instant::now);
            if since.elapsed() >= PEERS_GRACE {
                log::warn!("the job failed; not waiting for the other processes to stop");
                return Vec::new();
            }
        }
    }
}

/// Logs go through `tracing` (the `log` records of Rill and librdkafka
/// included), filtered by `RUST_LOG` (default `info`, librdkafka `warn`).
fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,librdkafka=warn,rdkafka=warn")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
