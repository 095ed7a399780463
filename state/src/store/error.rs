//! Errors of the storage layer.

use crate::Fault;

/// What went wrong in a store.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened, read or written (disk full,
    /// permissions, a lock held by another process).
    #[error("state store {location}: {detail}")]
    Io {
        /// The store's directory (or `memory`).
        location: String,
        /// What the backend said.
        detail: String,
    },
    /// The store's files are damaged or truncated.
    #[error("state store {location} is corrupted: {detail}")]
    Corrupted {
        /// The store's directory.
        location: String,
        /// What is damaged.
        detail: String,
    },
    /// The store was written by another version of Rill's layout.
    #[error(
        "state store {location} has format version {found}; this build reads only version {expected}: \
         start the job from a new (empty) --state-dir; the sources are read again from their start"
    )]
    Format {
        /// The store's directory.
        location: String,
        /// The version found.
        found: u32,
        /// The version this build reads.
        expected: u32,
    },
    /// A value could not be encoded or decoded.
    #[error("state value codec: {0}")]
    Codec(String),
    /// A state key or value is larger than the store takes.
    #[error("a state {what} of {bytes} bytes{} is larger than the most a store takes ({most} bytes)", key.as_ref().map(|k| format!(" (key {k})")).unwrap_or_default())]
    TooLarge {
        /// The record key it belongs to, debug-printed, when known.
        key: Option<String>,
        /// `key` or `value`.
        what: &'static str,
        /// Its encoded size.
        bytes: usize,
        /// The limit.
        most: usize,
    },
}

impl StoreError {
    /// Whose fault the error is.
    pub fn fault(&self) -> Fault {
        match self {
            StoreError::Io { .. } => Fault::External,
            StoreError::Corrupted { .. }
            | StoreError::Format { .. }
            | StoreError::TooLarge { .. } => Fault::User,
            StoreError::Codec(_) => Fault::Internal,
        }
    }
}
