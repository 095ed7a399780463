//! What every operator of a worker shares: the job's flags, its metrics, and
//! the job-wide error slot that stops every worker of the process.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rill_connectors::kafka::KafkaConfig;
use rill_state::{KeyGroups, SharedCheckpointer};

use crate::metrics::Metrics;
use crate::stop::StopHandle;
use crate::writer::ProcessWriter;
use crate::{Error, JobArgs, Result};

/// Shared by all workers of one process.
pub(crate) struct ProcessShared {
    pub job_name: String,
    pub args: JobArgs,
    pub metrics: Arc<Metrics>,
    /// The checkpoint writer, when the job has a `--state-dir`.
    pub writer: Option<ProcessWriter>,
    /// Asks the job to stop gracefully.
    pub stop: StopHandle,
    /// The job's key groups (from the state, once it exists).
    pub key_groups: KeyGroups,
    /// The latest watermark of each source worker (for alignment).
    pub source_marks: crate::source::align::SourceMarks,
    abort: AtomicBool,
    error: Mutex<Option<Error>>,
}

impl ProcessShared {
    pub fn new(
        job_name: String,
        args: JobArgs,
        metrics: Arc<Metrics>,
        writer: Option<ProcessWriter>,
        stop: StopHandle,
        key_groups: KeyGroups,
    ) -> Self {
        ProcessShared {
            job_name,
            args,
            metrics,
            writer,
            stop,
            key_groups,
            source_marks: Default::default(),
            abort: AtomicBool::new(false),
            error: Mutex::new(None),
        }
    }

    /// Records the job's first error and tells every worker to stop.
    pub fn fail(&self, error: Error) {
        log::error!("{}: {error}", self.job_name);
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(error);
        self.abort.store(true, Ordering::SeqCst);
    }

    /// True once any worker failed.
    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    /// The first error, if any.
    pub fn take_error(&self) -> Option<Error> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// One worker's view.
#[derive(Clone)]
pub(crate) struct WorkerCtx {
    pub shared: Arc<ProcessShared>,
    pub index: usize,
    pub peers: usize,
    /// Step names used so far in this worker's dataflow.
    steps: Rc<RefCell<BTreeSet<String>>>,
    /// How many sinks the dataflow has.
    sinks: Rc<Cell<usize>>,
    /// This worker's checkpointer, when the job has a `--state-dir`.
    pub checkpointer: Option<SharedCheckpointer>,
    /// The first epoch of this run: 0, or after the last epoch any worker
    /// prepared.
    pub start_epoch: u64,
    /// The frontier of every checkpointed step's progress (sources,
    /// stateful steps, sinks): sources read ahead of it by at most two
    /// epochs, so a slow step is not buried under input.
    pub flow: timely::dataflow::operators::probe::Handle<u64>,
    /// Called with each epoch whose checkpoint is complete, and whether it
    /// is the job's last.
    pub on_complete: Rc<RefCell<Vec<CompleteHook>>>,
    /// The dataflow is built only to be drawn (`--graph`): sources and
    /// sinks connect to nothing.
    pub graph_only: bool,
}

/// See [`WorkerCtx::on_complete`].
pub(crate) type CompleteHook = Box<dyn FnMut(u64, bool)>;

impl WorkerCtx {
    pub fn new(shared: Arc<ProcessShared>, index: usize, peers: usize) -> Self {
        WorkerCtx {
            shared,
            index,
            peers,
            steps: Rc::default(),
            sinks: Rc::default(),
            checkpointer: None,
            start_epoch: 0,
            flow: Default::default(),
            on_complete: Rc::default(),
            graph_only: false,
        }
    }

    /// The job's key groups: read from the state, or from `--key-groups`
    /// for new state.
    pub fn key_groups(&self) -> KeyGroups {
        self.shared.key_groups
    }

    /// Claims a step name; a name used twice is a job error (names are
    /// identities in checkpoints and metrics).
    pub fn claim_step(&self, name: &str) {
        if name.is_empty() {
            self.shared
                .fail(Error::Job("a step name must not be empty".into()));
        } else if !self.steps.borrow_mut().insert(name.to_owned()) {
            self.shared.fail(Error::Job(format!(
                "step name {name:?} is used twice; step names must be unique"
            )));
        }
    }

    pub fn add_sink(&self) {
        self.sinks.set(self.sinks.get() + 1);
    }

    pub fn sink_count(&self) -> usize {
        self.sinks.get()
    }

    pub fn worker_label(&self) -> String {
        self.index.to_string()
    }

    pub fn kafka(&self) -> Result<KafkaConfig> {
        match &self.shared.args.brokers {
            Some(b) => Ok(KafkaConfig::new(b.clone()).with(&self.shared.args.kafka_properties())),
            None => Err(Error::Config(
                "the job uses Kafka but no --brokers (RILL_BROKERS) was given".into(),
            )),
        }
    }
}
