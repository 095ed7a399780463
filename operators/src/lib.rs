//! Rill's dataflow operators, as extension traits on timely streams.
//!
//! One operator per file, one trait per operator, each taking a [`Step`]:
//! the step's name (its identity in logs, metrics and checkpoints; internal
//! timely operators are named `"{step}.{role}"`) and an optional [`Meter`]
//! that is told how many records went in and out, once per batch.
//!
//! Stateless: [`MapStep`], [`FilterStep`], [`FlatMapStep`], [`InspectStep`],
//! [`MergeStep`], [`BranchStep`]. Routing: [`KeyByStep`] sends each record to
//! the worker that owns its key group. Keyed and stateful: [`ProcessStep`],
//! the one core operator under every stateful step, with the value, list
//! and map states and timers a step declares in [`States`], reached from a
//! per-key [`Context`]; it stages their changes for checkpoints epoch by
//! epoch.
//!
//! ```
//! use rill_operators::{FilterStep, MapStep, Step};
//! use timely::dataflow::operators::{Capture, ToStream};
//! use timely::dataflow::operators::capture::Extract;
//!
//! let captured = timely::example(|scope| {
//!     (0..10u64)
//!         .to_stream(scope)
//!         .container::<Vec<_>>()
//!         .filter_step(&Step::new("evens"), |x| x % 2 == 0)
//!         .map_step(&Step::new("square"), |x| x * x)
//!         .capture()
//! });
//! let out: Vec<u64> = captured.extract().into_iter().flat_map(|(_, d)| d).collect();
//! assert_eq!(out, vec![0, 4, 16, 36, 64]);
//! ```

mod branch;
mod emit;
mod failure;
mod filter;
mod flat_map;
mod inspect;
mod join;
mod key_by;
mod keyed;
mod map;
mod merge;
mod process;
mod process2;
mod step;
mod watermark;
mod window;

pub use branch::{BranchStep, Predicate};
pub use emit::Emit;
pub use failure::Failure;
pub use filter::FilterStep;
pub use flat_map::FlatMapStep;
pub use inspect::InspectStep;
pub use join::{IntervalJoin, JoinKind, Joined, TableJoin, WindowJoin};
pub use key_by::KeyByStep;
pub use keyed::{
    Context, ListRef, ListState, MapRef, MapState, SideOutput, States, Timer, TimerKind,
    TimerState, TimersRef, ValueRef, ValueState,
};
pub use map::MapStep;
pub use merge::MergeStep;
pub use process::{Core, FromFn, LogicResult, Process, ProcessStep, Processed};
pub use process2::{Either, Process2, Process2Step};
pub use step::{Meter, Step};
pub use watermark::{Mark, Upstream, Watermark, Watermarks};
pub use window::{millis, Fold, Merge, Window, WindowLogic, WindowStates, Windows};
