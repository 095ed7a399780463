//! A test feed with event time: records and watermarks in one list.
//! Every worker walks the whole list: it emits its share of the records
//! (the `worker`-th of every `peers`) and every watermark, and each
//! watermark closes an epoch, so that epochs and watermarks are the same on
//! every worker and a run is deterministic. At the end the watermark goes
//! to `u64::MAX`: bounded input closes every window.

use super::{Polled, SourceDriver};
use crate::testing::Timed;
use crate::Result;
use rill_operators::Mark;

const BATCH: usize = 1024;

pub(crate) struct TimedDriver<V> {
    items: Vec<Timed<V>>,
    /// The next item to read; its checkpointed position.
    at: usize,
    /// Records met so far (to pick this worker's share).
    records: usize,
    worker: usize,
    peers: usize,
    watermark: Option<u64>,
    partition: i32,
}

impl<V: Clone> TimedDriver<V> {
    /// The driver of `worker`, resumed after `saved` items.
    pub fn new(items: Vec<Timed<V>>, worker: usize, peers: usize, saved: Option<i64>) -> Self {
        let mut driver = TimedDriver {
            items,
            at: 0,
            records: 0,
            worker,
            peers: peers.max(1),
            watermark: None,
            partition: super::partition_of(worker),
        };
        let saved = saved.unwrap_or(0).max(0) as usize;
        while driver.at < saved.min(driver.items.len()) {
            match &driver.items[driver.at] {
                Timed::Record(..) => driver.records += 1,
                Timed::Watermark(w) => driver.watermark = Some(*w),
            }
            driver.at += 1;
        }
        driver
    }
}

impl<V: Clone + 'static> SourceDriver<((), V, u64)> for TimedDriver<V> {
    fn poll(&mut self, out: &mut Vec<((), V, u64)>) -> Result<Polled> {
        let mut taken = 0;
        while let Some(item) = self.items.get(self.at) {
            self.at += 1;
            match item {
                Timed::Record(t, v) => {
                    if self.records % self.peers == self.worker {
                        out.push(((), v.clone(), *t));
                        taken += 1;
                    }
                    self.records += 1;
                }
                Timed::Watermark(w) => {
                    self.watermark = Some(self.watermark.map_or(*w, |m| m.max(*w)));
                    return Ok(Polled::CloseEpoch);
                }
            }
            if taken == BATCH {
                return Ok(Polled::Data);
            }
        }
        self.watermark = Some(u64::MAX);
        Ok(Polled::Finished)
    }

    fn positions(&self) -> Vec<(i32, i64)> {
        vec![(self.partition, self.at as i64)]
    }

    fn watermark(&mut self) -> Option<Mark> {
        self.watermark.map(Mark::At)
    }

    fn epochs_on_time(&self) -> bool {
        false
    }
}
