//! Crash points: failure injection compiled into every build, off unless
//! `RILL_CRASH_AT=POINT:N` is set. The process then aborts (as abruptly as
//! a SIGKILL: no flush, no checkpoint, no goodbye) the `N`-th time it
//! reaches `POINT`, so a job's delivery can be tested at the moments that
//! matter. The points:
//!
//! | point | where the process dies |
//! |---|---|
//! | `buffer` | an exactly-once sink is about to stage an epoch's output in the checkpoint (N-th epoch) |
//! | `prepared` | a checkpoint is complete and an exactly-once sink is about to publish its epoch (N-th epoch) |
//! | `publish` | an exactly-once sink is publishing: once N of its records are acknowledged by the broker |
//! | `published` | an exactly-once sink's epoch is all acknowledged, before its "published" mark is durable (N-th epoch) |
//! | `checkpoint` | a checkpoint batch is written to the store but not yet acknowledged to the workers (N-th write) |

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::{Error, Result};

/// The environment variable that arms a crash point.
pub const CRASH_AT: &str = "RILL_CRASH_AT";

/// The crash points there are.
pub const POINTS: [&str; 5] = ["buffer", "prepared", "publish", "published", "checkpoint"];

struct Armed {
    point: String,
    at: u64,
    seen: AtomicU64,
}

fn armed() -> &'static Option<Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED.get_or_init(|| parse(&std::env::var(CRASH_AT).ok()?).ok())
}

fn parse(spec: &str) -> Result<Armed> {
    let bad = || {
        Error::Config(format!(
            "{CRASH_AT}={spec:?}: expected POINT:N with POINT one of {} and N ≥ 1",
            POINTS.join(", ")
        ))
    };
    let (point, at) = spec.split_once(':').ok_or_else(bad)?;
    let at: u64 = at.trim().parse().map_err(|_| bad())?;
    if at == 0 || !POINTS.contains(&point) {
        return Err(bad());
    }
    Ok(Armed {
        point: point.to_owned(),
        at,
        seen: AtomicU64::new(0),
    })
}

/// Checks `RILL_CRASH_AT` when a job starts: a bad value is a clear error.
pub(crate) fn check() -> Result<()> {
    match std::env::var(CRASH_AT) {
        Ok(spec) => parse(&spec).map(|a| {
            log::warn!(
                "{CRASH_AT}: this process will abort at crash point {}:{}",
                a.point,
                a.at
            );
        }),
        Err(_) => Ok(()),
    }
}

/// Counts one arrival at `point` and aborts the process if it is the
/// armed one.
pub(crate) fn reached(point: &str) {
    let Some(a) = armed() else { return };
    if a.point == point && a.seen.fetch_add(1, Ordering::SeqCst) + 1 == a.at {
        die(point, a.at);
    }
}

/// Aborts the process if `point` is armed for `count` or fewer (for
/// points counted elsewhere, such as acknowledged records).
pub(crate) fn reached_count(point: &str, count: u64) {
    let Some(a) = armed() else { return };
    if a.point == point && count >= a.at {
        die(point, a.at);
    }
}

fn die(point: &str, at: u64) -> ! {
    eprintln!("rill: crash point {point}:{at} reached ({CRASH_AT}); aborting");
    std::process::abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_point_is_a_known_point_and_a_positive_count() {
        assert!(parse("publish:500").is_ok_and(|a| a.point == "publish" && a.at == 500));
        for bad in ["publish", "publish:0", "publish:x", "nowhere:3", ""] {
            let e = parse(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                e.contains("RILL_CRASH_AT") && e.contains("checkpoint"),
                "{bad}: {e}"
            );
        }
    }
}
