//! The dead-letter writer: records that failed to decode, with the reason.

use rdkafka::message::{Header, OwnedHeaders};

use super::{KafkaConfig, KafkaWriter, Outgoing, RawRecord};
use crate::Result;

/// Header carrying the decode error.
pub const HEADER_ERROR: &str = "rill.error";
/// Header carrying the source topic.
pub const HEADER_TOPIC: &str = "rill.source.topic";
/// Header carrying the source partition (decimal text).
pub const HEADER_PARTITION: &str = "rill.source.partition";
/// Header carrying the source offset (decimal text).
pub const HEADER_OFFSET: &str = "rill.source.offset";

/// Produces undecodable records, unchanged, to a dead-letter topic.
pub struct DeadLetterWriter {
    writer: KafkaWriter,
    written: u64,
}

impl DeadLetterWriter {
    /// A writer for the dead-letter topic `topic`.
    pub fn new(config: &KafkaConfig, topic: &str) -> Result<Self> {
        Ok(DeadLetterWriter {
            writer: KafkaWriter::new(config, topic)?,
            written: 0,
        })
    }

    /// Queues `record`'s key and value with `error` and its origin in headers.
    pub fn send(&mut self, record: &RawRecord<'_>, error: &str) -> Result<()> {
        let partition = record.partition.to_string();
        let offset = record.offset.to_string();
        let headers = OwnedHeaders::new_with_capacity(4)
            .insert(Header {
                key: HEADER_ERROR,
                value: Some(error),
            })
            .insert(Header {
                key: HEADER_TOPIC,
                value: Some(record.topic),
            })
            .insert(Header {
                key: HEADER_PARTITION,
                value: Some(&partition),
            })
            .insert(Header {
                key: HEADER_OFFSET,
                value: Some(&offset),
            });
        self.writer.send(
            0,
            Outgoing {
                key: record.key,
                payload: record.payload.unwrap_or_default(),
                partition: None,
                headers: Some(headers),
                timestamp: record.timestamp,
            },
        )?;
        self.written += 1;
        Ok(())
    }

    /// Waits until every dead letter is acknowledged.
    pub fn flush(&mut self) -> Result<()> {
        self.writer.flush()
    }

    /// How many records were sent to the dead-letter topic.
    pub fn written(&self) -> u64 {
        self.written
    }
}
