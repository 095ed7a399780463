//! A sink that prints `key<TAB>value` lines to stdout (demos).

use std::fmt::Debug;
use std::io::Write;

use super::SinkDriver;
use crate::Result;

pub(crate) struct StdoutDriver;

impl<K: Debug + 'static, V: Debug + 'static> SinkDriver<(K, V, u64)> for StdoutDriver {
    fn write(&mut self, _epoch: u64, batch: &mut Vec<(K, V, u64)>) -> Result<()> {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for (k, v, _) in batch.drain(..) {
            // A closed stdout (e.g. `| head`) is not a reason to fail the job.
            let _ = writeln!(out, "{k:?}\t{v:?}");
        }
        Ok(())
    }

    fn delivered(&mut self, _through: u64) -> Result<bool> {
        let _ = std::io::stdout().flush();
        Ok(true)
    }
}
