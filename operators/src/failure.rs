//! [`Failure`]: why a keyed step stopped, with the step's name and, where
//! one is known, the key.

use rill_state::{CheckpointError, StoreError};

/// Why a keyed step stopped.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The step's state could not be opened or resumed.
    #[error("step {step}: {error}")]
    State {
        /// The step.
        step: String,
        /// What went wrong.
        error: CheckpointError,
    },
    /// The store failed, or a state could not be encoded or stored.
    #[error("step {step}{}: {error}", key.as_ref().map(|k| format!(", key {k}")).unwrap_or_default())]
    Store {
        /// The step.
        step: String,
        /// The key being handled, debug-printed, if one is known.
        key: Option<String>,
        /// What went wrong.
        error: StoreError,
    },
    /// The step's logic returned an error or panicked.
    #[error("step {step}, key {key}: the step's logic {}: {message}", if *panicked { "panicked" } else { "failed" })]
    Logic {
        /// The step.
        step: String,
        /// The key being handled, debug-printed and cut short.
        key: String,
        /// The error's (or panic's) message.
        message: String,
        /// True for a panic.
        panicked: bool,
    },
}

impl Failure {
    pub(crate) fn state(step: &str, error: CheckpointError) -> Self {
        Failure::State {
            step: step.to_owned(),
            error,
        }
    }

    pub(crate) fn store(step: &str, key: Option<String>, error: StoreError) -> Self {
        Failure::Store {
            step: step.to_owned(),
            key,
            error,
        }
    }

    pub(crate) fn logic(step: &str, key: String, message: String, panicked: bool) -> Self {
        Failure::Logic {
            step: step.to_owned(),
            key,
            message,
            panicked,
        }
    }
}
