//! Stopping a job gracefully, on request ([`StopHandle::stop`]) or on the
//! first SIGINT or SIGTERM the process receives.
//!
//! Every source then ends its input where it is, as a bounded source does
//! at its end: the epoch it was in closes, the dataflow drains, sinks flush,
//! and the last checkpoint records exactly what the sources read, so a run
//! started again with the same `--state-dir` continues from there with
//! nothing read twice. [`Job::run`](crate::Job::run) then returns `Ok`.
//! A second signal ends the process at once (exit status 128 + the
//! signal), as if the job had crashed: a restart resumes from the last
//! complete checkpoint.
//!
//! An application that handles signals itself builds its job with
//! [`Job::without_signal_handlers`](crate::Job::without_signal_handlers):
//! that job installs no handlers, ignores signals other jobs' handlers
//! caught, and stops only through its [`StopHandle`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use signal_hook::consts::{SIGINT, SIGTERM};

/// Asks one job to stop gracefully (see the module docs). Clones share
/// the request; any thread may make it.
#[derive(Clone, Debug)]
pub struct StopHandle(Arc<Requests>);

#[derive(Debug)]
struct Requests {
    /// Set by [`StopHandle::stop`].
    asked: AtomicBool,
    /// Whether SIGINT and SIGTERM stop the job too.
    on_signals: AtomicBool,
}

impl Default for StopHandle {
    fn default() -> Self {
        StopHandle(Arc::new(Requests {
            asked: AtomicBool::new(false),
            on_signals: AtomicBool::new(true),
        }))
    }
}

impl StopHandle {
    /// Asks the job to stop: its sources end their input at their next
    /// step. Calling it again, or after the job ended, does nothing.
    pub fn stop(&self) {
        self.0.asked.store(true, Ordering::SeqCst);
    }

    /// True once the job was asked to stop, by this handle or (unless the
    /// job leaves signals to the application) a signal.
    pub fn is_stopping(&self) -> bool {
        self.0.asked.load(Ordering::Relaxed)
            || (self.0.on_signals.load(Ordering::Relaxed) && signalled())
    }

    /// Makes signals no longer stop the job (see
    /// [`Job::without_signal_handlers`](crate::Job::without_signal_handlers)).
    pub(crate) fn ignore_signals(&self) {
        self.0.on_signals.store(false, Ordering::SeqCst);
    }

    /// Whether SIGINT and SIGTERM stop the job.
    pub(crate) fn follows_signals(&self) -> bool {
        self.0.on_signals.load(Ordering::Relaxed)
    }
}

/// Set by the first SIGINT or SIGTERM (once the handlers are installed).
static SIGNALLED: OnceLock<Result<Arc<AtomicBool>, String>> = OnceLock::new();

/// Installs the SIGINT and SIGTERM handlers, once per process.
pub(crate) fn watch_signals() -> crate::Result<()> {
    let installed = SIGNALLED.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            // The shutdown goes first: it acts only when the flag is
            // already set, that is on a second signal.
            signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, flag.clone())
                .and_then(|_| signal_hook::flag::register(signal, flag.clone()))
                .map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
        }
        Ok(flag)
    });
    match installed {
        Ok(_) => Ok(()),
        Err(e) => Err(crate::Error::Runtime(e.clone())),
    }
}

/// True once the process received SIGINT or SIGTERM.
fn signalled() -> bool {
    matches!(SIGNALLED.get(), Some(Ok(flag)) if flag.load(Ordering::Relaxed))
}
