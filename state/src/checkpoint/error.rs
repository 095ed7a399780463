//! Errors of the checkpoint layer: each names the step or store concerned
//! and says what to do.

use crate::store::StoreError;
use crate::Fault;

/// A checkpoint could not be written, or a job cannot resume from one.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The checkpoint holds state for a step the job no longer has.
    #[error(
        "the checkpoint at epoch {epoch} holds state for step {step:?} ({kind}), but the job has no stateful step of that name; \
         restore the step (or its old name), or start with an empty --state-dir to discard the state"
    )]
    MissingStep {
        /// The step in the checkpoint.
        step: String,
        /// Its kind.
        kind: String,
        /// The resume epoch.
        epoch: u64,
    },
    /// The job has a stateful step the checkpoint has no state for.
    #[error(
        "stateful step {step:?} has no state in the checkpoint at epoch {epoch} (steps there: {known}); \
         was it renamed? A step's name is its identity in checkpoints"
    )]
    NewStep {
        /// The step in the job.
        step: String,
        /// The resume epoch.
        epoch: u64,
        /// The steps the checkpoint does hold.
        known: String,
    },
    /// The step exists in the checkpoint but keeps another kind of state.
    #[error(
        "step {step:?} is a {now} step but its checkpointed state was written by a {stored} step"
    )]
    KindChanged {
        /// The step.
        step: String,
        /// The kind in the checkpoint.
        stored: String,
        /// The kind in the job.
        now: String,
    },
    /// The step's key-group count differs from the checkpoint's.
    #[error(
        "step {step:?} uses {now} key groups but its checkpointed state has {stored}; \
         the key-group count is fixed when state is created (run with --key-groups {stored})"
    )]
    KeyGroupsChanged {
        /// The step.
        step: String,
        /// The count in the checkpoint.
        stored: u32,
        /// The count in the job.
        now: u32,
    },
    /// The step declares other states than the checkpoint holds.
    #[error(
        "step {step:?} declares the states {now} but its checkpointed state has {stored}; \
         a step's states are part of its identity in checkpoints"
    )]
    StatesChanged {
        /// The step.
        step: String,
        /// The states in the checkpoint.
        stored: String,
        /// The states in the job.
        now: String,
    },
    /// `--key-groups` asks for another count than the state was created with.
    #[error(
        "--key-groups {asked} conflicts with the state in {location}, created with {stored} key groups; \
         the count is fixed when state is created: drop the flag (or pass {stored}), or start from a new --state-dir"
    )]
    KeyGroupsConflict {
        /// The store.
        location: String,
        /// The count in the store.
        stored: u32,
        /// The count asked for.
        asked: u32,
    },
    /// The job runs with another number of workers than wrote the state.
    #[error(
        "the state in {location} was written by {stored_workers} workers in {stored_processes} processes, \
         but the job now has {workers} workers in {processes} processes; rescaling is not supported yet: \
         run with the original -w/-n"
    )]
    Rescaled {
        /// The store.
        location: String,
        /// Workers that wrote the state.
        stored_workers: u32,
        /// Processes that wrote the state.
        stored_processes: u32,
        /// Workers now.
        workers: u32,
        /// Processes now.
        processes: u32,
    },
}

impl CheckpointError {
    /// Whose fault the error is.
    pub fn fault(&self) -> Fault {
        match self {
            CheckpointError::Store(e) => e.fault(),
            _ => Fault::User,
        }
    }
}
