//! Newtypes for the identifiers that cross crate boundaries.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A timely timestamp: the unit of checkpointing and of exactly-once output.
///
/// Sources close an epoch every epoch interval (processing time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Epoch(pub u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "epoch {}", self.0)
    }
}

/// The global index of a worker: `process * workers_per_process + local index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WorkerIndex(pub usize);

impl fmt::Display for WorkerIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "worker {}", self.0)
    }
}

/// The name of a step in a job: its identity in checkpoints, metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StepId(pub String);

impl StepId {
    /// The step name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for StepId {
    fn from(name: &str) -> Self {
        StepId(name.to_owned())
    }
}

/// Whose fault an error is: it tells an operator what to fix, and whether
/// retrying (or restarting the job) can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Bad input, flags or job code: retrying does not help; fix the input.
    User,
    /// An outside system (Kafka, the disk, the network) failed: a retry may help.
    External,
    /// A bug in Rill itself: please report it.
    Internal,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::User => "user error",
            Fault::External => "external system error",
            Fault::Internal => "internal error",
        })
    }
}
