//! [`Emit`]: when a keyed step emits its main output.

/// When a keyed step emits a key's new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Emit {
    /// After every input record: a changelog, like a Kafka Streams KTable.
    #[default]
    EveryUpdate,
    /// Once per changed key, with its last value, when the epoch closes.
    EpochClose,
}
