//! A JSON-lines file source, read by worker 0.

use rill_connectors::file::JsonLinesReader;
use serde::de::DeserializeOwned;

use super::{Polled, SourceDriver};
use crate::{Error, Result};

const BATCH: usize = 1024;

/// Its checkpointed position is the number of values read (partition 0);
/// a resumed driver reads and drops that many first.
pub(crate) struct JsonLinesDriver<V> {
    step: String,
    reader: Option<JsonLinesReader<V>>,
    read: i64,
    skip: i64,
}

impl<V: DeserializeOwned> JsonLinesDriver<V> {
    /// Worker 0 opens the file; the others finish at once.
    pub fn open(
        step: &str,
        path: &std::path::Path,
        worker: usize,
        saved: Option<i64>,
    ) -> Result<Self> {
        let reader = if worker == 0 {
            Some(JsonLinesReader::open(path).map_err(|e| Error::connector(step, e))?)
        } else {
            None
        };
        Ok(JsonLinesDriver {
            step: step.to_owned(),
            reader,
            read: 0,
            skip: saved.unwrap_or(0),
        })
    }
}

impl<V: DeserializeOwned + 'static> SourceDriver<((), V, u64)> for JsonLinesDriver<V> {
    fn poll(&mut self, out: &mut Vec<((), V, u64)>) -> Result<Polled> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(Polled::Finished);
        };
        let mut values = Vec::with_capacity(BATCH);
        reader
            .read_batch(BATCH, &mut values)
            .map_err(|e| Error::connector(&self.step, e))?;
        let n = values.len() as i64;
        let drop = (self.skip - self.read).clamp(0, n) as usize;
        self.read += n;
        out.extend(values.into_iter().skip(drop).map(|v| ((), v, 0)));
        Ok(if reader.is_finished() {
            Polled::Finished
        } else {
            Polled::Data
        })
    }

    /// Only the worker that reads the file has a position: another
    /// worker's would overwrite it (the same partition, the same step).
    fn positions(&self) -> Vec<(i32, i64)> {
        match self.reader {
            Some(_) => vec![(0, self.read)],
            None => Vec::new(),
        }
    }
}
