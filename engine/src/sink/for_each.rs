//! A sink that calls a closure with every record.

use super::SinkDriver;
use crate::Result;

/// Calls `f(key, value)` for each record, on the worker that has it.
pub(crate) struct ForEachDriver<F>(pub F);

impl<K, V, F: FnMut(K, V) + 'static> SinkDriver<(K, V, u64)> for ForEachDriver<F> {
    fn write(&mut self, _epoch: u64, batch: &mut Vec<(K, V, u64)>) -> Result<()> {
        for (k, v, _) in batch.drain(..) {
            (self.0)(k, v);
        }
        Ok(())
    }
}
