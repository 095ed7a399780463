//! The Kafka sink driver: encodes keys and values and produces them.

use rill_connectors::kafka::{KafkaConfig, KafkaWriter};
use rill_connectors::{Codec, ConnectorError, KafkaKey};
use std::marker::PhantomData;

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

impl<K: KafkaKey, V: 'static, C: Codec<V>> SinkDriver<(K, V, u64)> for KafkaSinkDriver<K, V, C> {
    fn write(&mut self, batch: &mut Vec<(K, V, u64)>) -> Result<()> {
        for (key, value, time) in batch.drain(..) {
            self.key_buf.clear();
            self.value_buf.clear();
            let has_key = key.encode_key(&mut self.key_buf);
            self.codec
                .encode_into(&value, &mut self.value_buf)
                .map_err(|e| {
                    Error::connector(
                        &self.step,
                        ConnectorError::Encode {
                            target: self.writer.topic().to_owned(),
                            reason: e.0,
                        },
                    )
                })?;
            let key = has_key.then_some(self.key_buf.as_slice());
            self.writer
                .send(key, &self.value_buf, None, kafka_timestamp(time))
                .map_err(|e| Error::connector(&self.step, e))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.writer
            .flush()
            .map_err(|e| Error::connector(&self.step, e))
    }
}

/// A record's event time as a Kafka timestamp: none for records without
/// event time (0), so the producer stamps them.
fn kafka_timestamp(time: u64) -> Option<i64> {
    (time > 0).then(|| i64::try_from(time).unwrap_or(i64::MAX))
}
