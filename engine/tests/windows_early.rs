//! Early results: with `early_results`, each window that changed in an
//! epoch reports its value so far when the epoch closes, and its final
//! value once the watermark passes its end. Hopping counts (kept as
//! slices) and hopping aggregates (kept per window) report the same.

use rill::testing::Timed;
use rill::Windows;
use std::collections::BTreeMap;
use std::time::Duration;

/// Per (step, window start, window end), the values it emitted, in order.
type Emissions = BTreeMap<(String, u64, u64), Vec<u64>>;

fn run(workers: usize) -> Emissions {
    // Hopping windows of 100 ms every 50 ms; one key. Each watermark
    // closes an epoch.
    let items = vec![
        Timed::Record(5, ()),
        Timed::Record(60, ()),
        Timed::Watermark(70),
        Timed::Record(80, ()),
        Timed::Watermark(90),
        Timed::Record(95, ()),
        Timed::Record(120, ()),
        Timed::Watermark(98),
        Timed::Watermark(1_000),
    ];
    let out = rill::testing::run(workers, move |flow| {
        let keyed = flow
            .source_timed("feed", items.clone())
            .key_by("one-key", |_| 0u8);
        let windowed = || {
            let size = Duration::from_millis(100);
            let slide = Duration::from_millis(50);
            keyed
                .clone()
                .window(Windows::hopping(size, slide))
                .early_results()
        };
        let count = windowed().count("count").map("tag-count", |w| ("count", w));
        let folded = windowed()
            .aggregate("fold", || 0u64, |n, _| *n += 1)
            .map("tag-fold", |w| ("fold", w));
        count.merge("both", [folded])
    })
    .expect("the job runs");
    let mut emitted = Emissions::new();
    for (_, (step, w)) in out {
        let at = (step.to_string(), w.start, w.end);
        emitted.entry(at).or_default().push(w.value);
    }
    emitted
}

#[test]
fn early_results_report_each_changed_window_at_each_epoch_close() {
    for workers in [1, 2] {
        let got = run(workers);
        for step in ["count", "fold"] {
            let of = |s: u64, e: u64| got.get(&(step.to_string(), s, e)).cloned();
            // [0, 100): 2 after the first epoch, 3 after the second, 4 in
            // the third (95), then final.
            assert_eq!(
                of(0, 100),
                Some(vec![2, 3, 4, 4]),
                "{step}, {workers} workers"
            );
            // [50, 150): 1, 2, 4 (95 and 120), final 4.
            assert_eq!(
                of(50, 150),
                Some(vec![1, 2, 4, 4]),
                "{step}, {workers} workers"
            );
            // [100, 200): only 120, from the third epoch on.
            assert_eq!(of(100, 200), Some(vec![1, 1]), "{step}, {workers} workers");
            assert_eq!(got.keys().filter(|k| k.0 == step).count(), 3, "{got:?}");
        }
    }
}
