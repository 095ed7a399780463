//! A sink that collects records into a shared vector (tests and demos).

use std::sync::{Arc, Mutex};

use super::SinkDriver;
use crate::Result;

/// A handle to the records a `collect` sink gathered, from every worker of
/// the process. Clone it into the job closure; read it after the job ends.
pub struct Collector<T> {
    items: Arc<Mutex<Vec<T>>>,
}

impl<T> Clone for Collector<T> {
    fn clone(&self) -> Self {
        Collector {
            items: self.items.clone(),
        }
    }
}

impl<T> Default for Collector<T> {
    fn default() -> Self {
        Collector {
            items: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl<T> Collector<T> {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes everything collected so far.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.items.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl<K: 'static, V: 'static> SinkDriver<(K, V, u64)> for Collector<(K, V)> {
    fn write(&mut self, _epoch: u64, batch: &mut Vec<(K, V, u64)>) -> Result<()> {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(batch.drain(..).map(|(k, v, _)| (k, v)));
        Ok(())
    }
}
