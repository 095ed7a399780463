//! Deterministic partition assignment from the global worker index.

/// The partitions of a topic with `partitions` partitions that worker `worker`
/// of `workers` reads: partition `p` goes to worker `p % workers`.
///
/// Every worker of every process computes the same answer, so no coordination
/// is needed and each partition is read by exactly one worker.
///
/// ```
/// use rill_connectors::kafka::assign_partitions;
/// assert_eq!(assign_partitions(4, 0, 2), vec![0, 2]);
/// assert_eq!(assign_partitions(4, 1, 2), vec![1, 3]);
/// assert_eq!(assign_partitions(1, 1, 2), Vec::<i32>::new());
/// ```
pub fn assign_partitions(partitions: i32, worker: usize, workers: usize) -> Vec<i32> {
    let workers = workers.max(1) as i32;
    (0..partitions)
        .filter(|p| p % workers == worker as i32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_read_exactly_once() {
        for partitions in 0..9 {
            for workers in 1..6 {
                let mut all: Vec<i32> = (0..workers)
                    .flat_map(|w| assign_partitions(partitions, w, workers))
                    .collect();
                all.sort();
                assert_eq!(all, (0..partitions).collect::<Vec<_>>());
            }
        }
    }
}
