//! What an exactly-once sink already published: each record it produces
//! carries headers naming the job, the writer (a worker), the epoch and
//! the record's sequence number in that epoch. At resume, the writer reads
//! its output partitions from where its last published epoch ended and
//! finds, per epoch and partition, the highest sequence number that
//! landed: order is kept per partition, so everything before it landed too.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{KafkaConfig, ReaderContext, BROKER_TIMEOUT};
use crate::{ConnectorError, Result};

/// Header: the job that produced the record.
pub const HEADER_JOB: &str = "rill-job";
/// Header: the writer (the job's global worker index) that produced it.
pub const HEADER_WRITER: &str = "rill-writer";
/// Header: the epoch whose output it is.
pub const HEADER_EPOCH: &str = "rill-epoch";
/// Header: its sequence number among the writer's records of the epoch.
pub const HEADER_SEQ: &str = "rill-seq";

/// How long a scan keeps reading after every partition reported its end,
/// and after the last record of the writer's it found: right after a
/// produce, a broker (Tansu) can report an end of partition before the
/// last acknowledged records are visible.
const SETTLE: Duration = Duration::from_millis(500);

/// How long a scan waits for the writer's last record: a broker may answer
/// a fetch past a partition's end with nothing rather than an error.
const CHECK_WAIT: Duration = Duration::from_secs(10);

/// The identity headers of one record.
pub fn identity_headers(job: &str, writer: u32, epoch: u64, seq: u64) -> OwnedHeaders {
    let (writer, epoch, seq) = (writer.to_string(), epoch.to_string(), seq.to_string());
    OwnedHeaders::new_with_capacity(4)
        .insert(Header {
            key: HEADER_JOB,
            value: Some(job),
        })
        .insert(Header {
            key: HEADER_WRITER,
            value: Some(&writer),
        })
        .insert(Header {
            key: HEADER_EPOCH,
            value: Some(&epoch),
        })
        .insert(Header {
            key: HEADER_SEQ,
            value: Some(&seq),
        })
}

/// Where a scan of one partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanFrom {
    /// The offset after the writer's last acknowledged record (or the
    /// partition's end when the job first started).
    pub offset: i64,
    /// True when the record before `offset` is the writer's own: the scan
    /// then checks that it is still there, so a deleted or rewritten topic
    /// is found.
    pub own: bool,
}

/// Per `(epoch, partition)`, the highest sequence number of writer
/// `writer` of job `job` found in `topic` at or after `from`.
pub type Landed = BTreeMap<(u64, i32), u64>;

/// Reads every partition in `from` to its end and returns what writer
/// `writer` of job `job` published there. Fails clearly when the topic
/// no longer holds the writer's last record (deleted, re-created or
/// truncated).
pub fn landed(
    config: &KafkaConfig,
    topic: &str,
    from: &BTreeMap<i32, ScanFrom>,
    job: &str,
    writer: u32,
) -> Result<Landed> {
    let consumer: BaseConsumer<ReaderContext> = config
        .client_config(&[
            ("group.id", "rill-landed"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "true"),
            // An offset past the end means the topic lost records.
            ("auto.offset.reset", "error"),
            ("fetch.wait.max.ms", "50"),
        ])
        .create_with_context(ReaderContext)
        .map_err(|e| ConnectorError::kafka("creating the consumer", e))?;
    let mut list = TopicPartitionList::new();
    for (&p, f) in from {
        let start = if f.own { f.offset - 1 } else { f.offset };
        list.add_partition_offset(topic, p, Offset::Offset(start.max(0)))
            .map_err(|e| ConnectorError::kafka("building the assignment", e))?;
    }
    consumer
        .assign(&list)
        .map_err(|e| ConnectorError::kafka(format!("assigning partitions of {topic}"), e))?;
    drop(list);
    let lost = |place: &str, why: &str| {
        ConnectorError::Config(format!(
            "output topic {topic} no longer holds what this job published to {place} \
             ({why}): it was deleted, re-created or truncated since; publishing again could \
             lose or repeat records, so the job stops. Start it with a new --state-dir to \
             write the output afresh"
        ))
    };
    // Partitions whose writer's last record still has to be seen.
    let mut unchecked: BTreeMap<i32, i64> = from
        .iter()
        .filter(|(_, f)| f.own && f.offset > 0)
        .map(|(&p, f)| (p, f.offset - 1))
        .collect();
    for (&p, &last) in &unchecked {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, BROKER_TIMEOUT)
            .map_err(|e| ConnectorError::kafka(format!("watermarks of {topic}/{p}"), e))?;
        if high == 0 {
            return Err(lost(
                &format!("partition {p}"),
                &format!("it is empty, and the job wrote up to offset {last}"),
            ));
        }
    }
    let started = Instant::now();
    let mut found = Landed::new();
    let mut ended: BTreeMap<i32, Instant> = BTreeMap::new();
    let deadline = Instant::now() + BROKER_TIMEOUT;
    let mut read = 0u64;
    let mut last_ours = Instant::now();
    loop {
        let settled = ended.len() == from.len()
            && ended.values().all(|t| t.elapsed() >= SETTLE)
            && last_ours.elapsed() >= SETTLE
            && unchecked.is_empty();
        if settled {
            break;
        }
        if let Some((&p, &last)) = unchecked
            .iter()
            .next()
            .filter(|_| started.elapsed() > CHECK_WAIT)
        {
            return Err(lost(
                &format!("partition {p}"),
                &format!("it has no record at offset {last}, the job's last"),
            ));
        }
        if Instant::now() > deadline {
            return Err(ConnectorError::Timeout(format!(
                "timed out reading output topic {topic} to its end to find what was published"
            )));
        }
        match consumer.poll(Duration::from_millis(50)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                if unchecked.contains_key(&p) {
                    return Err(lost(
                        &format!("partition {p}"),
                        "it ends before the last record the job wrote",
                    ));
                }
                ended.entry(p).or_insert_with(Instant::now);
            }
            Some(Err(e)) => {
                let out_of_range = e.rdkafka_error_code().is_some_and(|c| {
                    c == rdkafka::types::RDKafkaErrorCode::OffsetOutOfRange
                        || c == rdkafka::types::RDKafkaErrorCode::AutoOffsetReset
                });
                if out_of_range {
                    return Err(lost("it", &e.to_string()));
                }
                return Err(ConnectorError::kafka(format!("reading {topic}"), e));
            }
            Some(Ok(m)) => {
                read += 1;
                let p = m.partition();
                let ours = identity(&m, job, writer);
                if let Some(expected) = unchecked.remove(&p) {
                    if m.offset() != expected || ours.is_none() {
                        return Err(lost(
                            &format!("partition {p}"),
                            &format!("offset {expected} is not the job's record"),
                        ));
                    }
                }
                if let Some((epoch, seq)) = ours {
                    last_ours = Instant::now();
                    let best = found.entry((epoch, p)).or_insert(seq);
                    *best = (*best).max(seq);
                }
            }
        }
    }
    log::info!(
        "kafka sink {topic}: writer {writer} read {read} records to find what it published: {} (epoch, partition) pairs",
        found.len()
    );
    Ok(found)
}

/// The epoch and sequence number of `m` if writer `writer` of job `job`
/// produced it.
fn identity<M: Message>(m: &M, job: &str, writer: u32) -> Option<(u64, u64)> {
    let headers = m.headers()?;
    let mut fields: [Option<&[u8]>; 4] = [None; 4];
    for h in headers.iter() {
        let slot = match h.key {
            HEADER_JOB => 0,
            HEADER_WRITER => 1,
            HEADER_EPOCH => 2,
            HEADER_SEQ => 3,
            _ => continue,
        };
        fields[slot] = h.value;
    }
    let number = |v: Option<&[u8]>| std::str::from_utf8(v?).ok()?.parse::<u64>().ok();
    if fields[0]? != job.as_bytes() || number(fields[1])? != u64::from(writer) {
        return None;
    }
    Some((number(fields[2])?, number(fields[3])?))
}
