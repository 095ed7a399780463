//! The connectors' error type.

use rdkafka::error::KafkaError;
use rill_state::Fault;

/// What can go wrong at a job's edges.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// A Kafka record could not be decoded by the source's format.
    #[error(
        "cannot decode record in topic {topic}, partition {partition}, offset {offset}: {reason}"
    )]
    Decode {
        /// The topic the record came from.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// What the format said.
        reason: String,
    },
    /// A record could not be encoded for a sink.
    #[error("cannot encode record for {target}: {reason}")]
    Encode {
        /// The topic or file written to.
        target: String,
        /// What the format said.
        reason: String,
    },
    /// A Kafka client call failed.
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What Rill was doing.
        context: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// A connector was configured wrongly (a missing topic, a bad option).
    #[error("{0}")]
    Config(String),
    /// The broker did not answer in time (a restart may help).
    #[error("{0}")]
    Timeout(String),
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line of a JSON-lines file could not be decoded.
    #[error("{path}, line {line}: {reason}")]
    FileDecode {
        /// The file.
        path: String,
        /// The 1-based line number.
        line: u64,
        /// What the decoder said.
        reason: String,
    },
}

impl ConnectorError {
    /// Wraps a Kafka error with what Rill was doing when it happened.
    pub fn kafka(context: impl Into<String>, source: KafkaError) -> Self {
        ConnectorError::Kafka {
            context: context.into(),
            source,
        }
    }

    /// Whose fault the error is.
    pub fn fault(&self) -> Fault {
        match self {
            ConnectorError::Decode { .. }
            | ConnectorError::Encode { .. }
            | ConnectorError::Config(_)
            | ConnectorError::FileDecode { .. } => Fault::User,
            // A property librdkafka refuses: no restart helps.
            ConnectorError::Kafka {
                source: KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_),
                ..
            } => Fault::User,
            ConnectorError::Kafka { .. }
            | ConnectorError::Io { .. }
            | ConnectorError::Timeout(_) => Fault::External,
        }
    }

    /// Whether retrying (restarting the job) may help.
    pub fn retryable(&self) -> bool {
        self.fault() == Fault::External
    }
}

/// The connectors' result type.
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;
