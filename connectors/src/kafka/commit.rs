//! Committing a source's checkpointed positions to a consumer group, so
//! that standard lag tools (and Burrow-style alerts) see the job. The
//! offsets in the checkpoint stay the truth at resume; the group only
//! mirrors them.

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::{KafkaConfig, ReaderContext};
use crate::{ConnectorError, Result};

/// Commits one topic's offsets to one group, without joining it (no
/// subscription, no rebalancing).
pub struct GroupCommitter {
    consumer: BaseConsumer<ReaderContext>,
    topic: String,
}

impl GroupCommitter {
    /// A committer of `topic`'s offsets to `group`.
    pub fn new(config: &KafkaConfig, group: &str, topic: &str) -> Result<Self> {
        let consumer = config
            .client_config(&[("enable.auto.commit", "false")])
            .set("group.id", group)
            .create_with_context(ReaderContext)
            .map_err(|e| ConnectorError::kafka("creating the group committer", e))?;
        Ok(GroupCommitter {
            consumer,
            topic: topic.to_owned(),
        })
    }

    /// Commits `positions` (partition, next offset to read); `wait`: until
    /// the broker has them (the job's last commit), else in the background.
    /// Partitions never read (no offset yet) are left out.
    pub fn commit(&self, positions: &[(i32, i64)], wait: bool) -> Result<()> {
        let mut list = TopicPartitionList::new();
        for &(partition, offset) in positions.iter().filter(|(_, o)| *o >= 0) {
            list.add_partition_offset(&self.topic, partition, Offset::Offset(offset))
                .map_err(|e| ConnectorError::kafka("listing the offsets to commit", e))?;
        }
        if list.count() == 0 {
            return Ok(());
        }
        let mode = if wait {
            CommitMode::Sync
        } else {
            CommitMode::Async
        };
        // Serves the answers of earlier background commits.
        let _ = self.consumer.poll(std::time::Duration::ZERO);
        self.consumer
            .commit(&list, mode)
            .map_err(|e| ConnectorError::kafka(format!("committing offsets of {}", self.topic), e))
    }
}
