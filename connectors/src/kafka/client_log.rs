//! How the Kafka clients' errors and librdkafka's own log lines reach the
//! job's log. An unreachable broker is one line per broker every
//! [`EVERY`] (librdkafka keeps retrying meanwhile), not a line per client
//! and per attempt; librdkafka's `FAIL` lines, which repeat the error
//! callback, are left out.

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often an unreachable broker is reported.
pub const EVERY: Duration = Duration::from_secs(10);

/// When each broker was last reported unreachable, over all clients.
static REPORTED: Mutex<BTreeMap<String, Instant>> = Mutex::new(BTreeMap::new());

/// Logs a client's error callback.
pub(crate) fn error(error: &KafkaError, reason: &str) {
    use RDKafkaErrorCode as Code;
    match error {
        KafkaError::PartitionEOF(_) | KafkaError::Global(Code::PartitionEOF) => {}
        // Follows from the transport failures, reported below.
        KafkaError::Global(Code::AllBrokersDown) => {}
        KafkaError::Global(Code::BrokerTransportFailure | Code::Resolve) => {
            // "host:port/id: Connect to ... failed: ..."
            let broker = reason.split('/').next().unwrap_or(reason).to_owned();
            let mut reported = REPORTED.lock().unwrap_or_else(|p| p.into_inner());
            if reported.get(&broker).is_some_and(|t| t.elapsed() < EVERY) {
                return;
            }
            reported.insert(broker.clone(), Instant::now());
            log::error!(
                "kafka: cannot reach broker {broker}: {reason}; retrying (next report in {}s)",
                EVERY.as_secs()
            );
        }
        _ => log::error!("librdkafka: {error}: {reason}"),
    }
}

/// Logs one of librdkafka's own log lines (target `librdkafka`).
pub(crate) fn line(level: RDKafkaLogLevel, facility: &str, message: &str) {
    if facility == "FAIL" {
        return;
    }
    let level = match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => log::Level::Error,
        RDKafkaLogLevel::Warning => log::Level::Warn,
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => log::Level::Info,
        RDKafkaLogLevel::Debug => log::Level::Debug,
    };
    log::log!(target: "librdkafka", level, "librdkafka: {facility} {message}");
}
