//! The keyed core's parts: the states a step declares ([`States`]), the
//! per-key [`Context`] its logic sees, and the step's state on a worker.

mod context;
mod runtime;
mod states;

pub use context::{Context, ListRef, MapRef, TimersRef, ValueRef};
pub(crate) use runtime::Keyed;
pub use runtime::{Timer, TimerKind};
pub use states::{ListState, MapState, SideOutput, States, TimerState, ValueState};
pub(crate) use states::{MakeValue, TableArgs};
