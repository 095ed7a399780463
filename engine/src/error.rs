//! Rill's error type.

use rill_connectors::ConnectorError;
use rill_state::CheckpointError;
pub use rill_state::Fault;

/// Everything that can stop a job.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or setting is wrong.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The job's dataflow is malformed (for example, it has no sink).
    #[error("invalid job: {0}")]
    Job(String),
    /// A connector failed in a step.
    #[error("step {step}: {source}")]
    Connector {
        /// The step's name.
        step: String,
        /// What went wrong.
        #[source]
        source: Box<ConnectorError>,
    },
    /// The metrics endpoint could not start.
    #[error("metrics endpoint on {addr}: {source}")]
    Metrics {
        /// The address it tried to listen on.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// State or checkpoints failed (in a step, or at start-up).
    #[error("{context}: {source}")]
    State {
        /// The step, or `state` for the store as a whole.
        context: String,
        /// What went wrong.
        #[source]
        source: Box<CheckpointError>,
    },
    /// A keyed step failed: its logic returned an error or panicked, or
    /// its state could not be stored. The message names the step and, when
    /// known, the key.
    #[error("{0}")]
    Step(Box<rill_operators::Failure>),
    /// The timely runtime failed (for example, a peer process is unreachable).
    #[error("dataflow runtime: {0}")]
    Runtime(String),
    /// A worker thread panicked: a bug in Rill or in the job's code.
    #[error("a worker panicked: {0}")]
    WorkerPanicked(String),
}

impl Error {
    /// Attaches a step name to a connector error.
    pub fn connector(step: &str, source: ConnectorError) -> Self {
        Error::Connector {
            step: step.to_owned(),
            source: Box::new(source),
        }
    }

    /// Attaches context (a step name) to a state error.
    pub fn state(context: &str, source: impl Into<CheckpointError>) -> Self {
        Error::State {
            context: context.to_owned(),
            source: Box::new(source.into()),
        }
    }

    /// Appends advice to the message of a state error (other errors are
    /// returned unchanged).
    pub fn with_hint(self, hint: &str) -> Self {
        match self {
            Error::State { context, source } if !hint.is_empty() => Error::State {
                context: format!("{context} ({})", hint.trim_start_matches("; ")),
                source,
            },
            other => other,
        }
    }

    /// Whose fault the error is.
    pub fn fault(&self) -> Fault {
        match self {
            Error::Config(_) | Error::Job(_) => Fault::User,
            Error::Connector { source, .. } => source.fault(),
            Error::State { source, .. } => source.fault(),
            Error::Step(f) => match f.as_ref() {
                rill_operators::Failure::Logic { .. } => Fault::User,
                rill_operators::Failure::State { error, .. } => error.fault(),
                rill_operators::Failure::Store { error, .. } => error.fault(),
            },
            Error::Metrics { .. } | Error::Runtime(_) => Fault::External,
            Error::WorkerPanicked(_) => Fault::Internal,
        }
    }

    /// Whether restarting the job may help.
    pub fn retryable(&self) -> bool {
        self.fault() == Fault::External
    }
}

/// Rill's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The exit code of a job process that failed in a way a restart can help
/// with (a lost peer process, an unreachable broker): `EX_TEMPFAIL`. Any
/// other failure exits with 1 (2 for bad flags); `rill run` restarts the
/// job only after this code or a death by signal.
pub const EXIT_RESTART: u8 = 75;

/// Ends a job binary's `main` with the exit code its result calls for:
/// 0, [`EXIT_RESTART`] when a [`Error`] in the error's chain is
/// [retryable](Error::retryable), else 1; prints the error first.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     rill::exit(run())
/// }
///
/// fn run() -> anyhow::Result<()> {
///     let job = rill::Job::from_args("my-job")?;
///     # let _ = job;
///     Ok(())
/// }
/// ```
pub fn exit<E: Into<anyhow::Error>>(result: std::result::Result<(), E>) -> std::process::ExitCode {
    let Err(e) = result else {
        return std::process::ExitCode::SUCCESS;
    };
    let e: anyhow::Error = e.into();
    eprintln!("Error: {e:?}");
    let restart = e
        .chain()
        .any(|c| c.downcast_ref::<Error>().is_some_and(Error::retryable));
    std::process::ExitCode::from(if restart { EXIT_RESTART } else { 1 })
}
