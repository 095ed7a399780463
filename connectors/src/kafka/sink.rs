//! The Kafka sink writer: an idempotent producer whose delivery errors are
//! kept and returned at the next flush, never dropped.

use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{KafkaConfig, BROKER_TIMEOUT};
use crate::{ConnectorError, Result};

/// Collects the first delivery error reported by librdkafka.
#[derive(Default, Clone)]
pub(crate) struct DeliveryErrors {
    first: Arc<Mutex<Option<KafkaError>>>,
}

impl ClientContext for DeliveryErrors {}

impl ProducerContext for DeliveryErrors {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert_with(|| e.clone());
        }
    }
}

impl DeliveryErrors {
    fn take(&self) -> Option<KafkaError> {
        self.first.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Produces records to one topic.
pub struct KafkaWriter {
    producer: BaseProducer<DeliveryErrors>,
    topic: String,
    unpolled: usize,
}

impl KafkaWriter {
    /// Creates an idempotent producer for `topic` (acks=all, ordered per partition).
    pub fn new(config: &KafkaConfig, topic: &str) -> Result<Self> {
        let producer = config
            .client_config(&[
                ("enable.idempotence", "true"),
                ("linger.ms", "5"),
                ("batch.num.messages", "10000"),
                ("queue.buffering.max.messages", "1000000"),
                ("queue.buffering.max.kbytes", "1048576"),
                ("message.timeout.ms", "60000"),
            ])
            .create_with_context(DeliveryErrors::default())
            .map_err(|e| ConnectorError::kafka(format!("creating the producer for {topic}"), e))?;
        Ok(KafkaWriter {
            producer,
            topic: topic.to_owned(),
            unpolled: 0,
        })
    }

    /// The topic written.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues one record, with its timestamp in milliseconds if given (else
    /// the producer's clock). Blocks (serving delivery reports) while
    /// librdkafka's queue is full. A delivery error reported since the last
    /// flush is returned.
    pub fn send(
        &mut self,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
        timestamp: Option<i64>,
    ) -> Result<()> {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic).payload(payload);
        if let Some(t) = timestamp {
            record = record.timestamp(t);
        }
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(10));
                    self.check()?;
                }
                Err((e, _)) => {
                    return Err(ConnectorError::kafka(
                        format!("producing to {}", self.topic),
                        e,
                    ))
                }
            }
        }
        self.unpolled += 1;
        if self.unpolled >= 1024 {
            self.unpolled = 0;
            self.producer.poll(Duration::ZERO);
            self.check()?;
        }
        Ok(())
    }

    /// Waits until every queued record is acknowledged; returns the first
    /// delivery error since the last flush.
    pub fn flush(&mut self) -> Result<()> {
        self.producer
            .flush(BROKER_TIMEOUT)
            .map_err(|e| ConnectorError::kafka(format!("flushing {}", self.topic), e))?;
        self.unpolled = 0;
        self.check()
    }

    fn check(&self) -> Result<()> {
        match self.producer.context().take() {
            None => Ok(()),
            Some(e) => Err(ConnectorError::kafka(
                format!("delivering to {}", self.topic),
                e,
            )),
        }
    }
}
