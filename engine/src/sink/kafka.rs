//! The at-least-once Kafka sink driver: encodes keys and values and
//! produces them as they come; an epoch is let go once every record of it
//! is acknowledged (asked without blocking, woken by the producer's
//! thread).

use rill_connectors::kafka::{KafkaConfig, KafkaWriter, Outgoing};
use rill_connectors::{Codec, ConnectorError, KafkaKey};
use std::marker::PhantomData;
use timely::scheduling::SyncActivator;

use super::SinkDriver;
use crate::{Error, Result};

pub(crate) struct KafkaSinkDriver<K, V, C> {
    step: String,
    writer: KafkaWriter,
    codec: C,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    _marker: PhantomData<fn(K, V)>,
}

impl<K, V, C> KafkaSinkDriver<K, V, C> {
    pub fn new(step: &str, config: &KafkaConfig, topic: &str, codec: C) -> Result<Self> {
        Ok(KafkaSinkDriver {
            step: step.to_owned(),
            writer: KafkaWriter::new(config, topic).map_err(|e| Error::connector(step, e))?,
            codec,
            key_buf: Vec::new(),
            value_buf: Vec::new(),
            _marker: PhantomData,
        })
    }
}

/// Encodes `value` with `codec` into `buf`, as a sink error naming `topic`.
pub(crate) fn encode_value<V, C: Codec<V>>(
    codec: &C,
    value: &V,
    buf: &mut Vec<u8>,
    step: &str,
    topic: &str,
) -> Result<()> {
    buf.clear();
    codec.encode_into(value, buf).map_err(|e| {
        Error::connector(
            step,
            ConnectorError::Encode {
                target: topic.to_owned(),
                reason: e.0,
            },
        )
    })
}

impl<K: KafkaKey, V: 'static, C: Codec<V>> SinkDriver<(K, V, u64)> for KafkaSinkDriver<K, V, C> {
    fn write(&mut self, epoch: u64, batch: &mut Vec<(K, V, u64)>) -> Result<()> {
        for (key, value, time) in batch.drain(..) {
            self.key_buf.clear();
            let has_key = key.encode_key(&mut self.key_buf);
            let topic = self.writer.topic();
            encode_value(&self.codec, &value, &mut self.value_buf, &self.step, topic)?;
            let record = Outgoing {
                key: has_key.then_some(self.key_buf.as_slice()),
                payload: &self.value_buf,
                partition: None,
                headers: None,
                timestamp: kafka_timestamp(time),
            };
            self.writer
                .send(epoch, record)
                .map_err(|e| Error::connector(&self.step, e))?;
        }
        Ok(())
    }

    fn delivered(&mut self, through: u64) -> Result<bool> {
        self.writer
            .delivered_through(through)
            .map_err(|e| Error::connector(&self.step, e))
    }

    fn set_wakeup(&mut self, wake: SyncActivator) {
        self.writer.set_wakeup(move || {
            let _ = wake.activate();
        });
    }
}

/// A record's event time as a Kafka timestamp: none for records without
/// event time (0), so the producer stamps them.
pub(crate) fn kafka_timestamp(time: u64) -> Option<i64> {
    (time > 0).then(|| i64::try_from(time).unwrap_or(i64::MAX))
}
