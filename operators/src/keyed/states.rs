//! [`States`]: the states a keyed step declares by name when it is built,
//! and the typed handles user logic reaches them with.

use std::hash::Hash;
use std::marker::PhantomData;

use rill_state::{KeyGroups, SharedCheckpointer, StateKind, Table};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::runtime::{ValueSlot, Values};

/// What a value state's table is built from, once the step is registered.
pub(crate) struct TableArgs<'a> {
    pub step: &'a str,
    pub step_id: u64,
    pub groups: KeyGroups,
    pub checkpointer: Option<SharedCheckpointer>,
    pub capacity: usize,
}

pub(crate) type MakeValue<K> = Box<dyn FnOnce(&TableArgs<'_>, u8) -> Box<dyn ValueSlot<K>>>;

/// The states of one keyed step, declared by name before it is built: a
/// resumed job checks them against its checkpoint.
///
/// ```
/// use rill_operators::States;
///
/// let mut states = States::<String>::new();
/// let total = states.value::<u64>("total");
/// let seen = states.list::<String>("seen");
/// let by_window = states.map::<u64, f64>("by-window");
/// let timers = states.timers();
/// let late = states.side_output("late");
/// # let _ = (total, seen, by_window, timers, late);
/// ```
pub struct States<K> {
    pub(crate) specs: Vec<(String, StateKind)>,
    pub(crate) values: Vec<(u8, MakeValue<K>)>,
    pub(crate) sides: Vec<String>,
    pub(crate) timers: bool,
}

/// A handle to a [`States::value`] state: one `S` per key.
pub struct ValueState<S> {
    pub(crate) slot: usize,
    _s: PhantomData<fn() -> S>,
}

/// A handle to a [`States::list`] state: an appendable list of `T` per key.
pub struct ListState<T> {
    pub(crate) state: u8,
    _t: PhantomData<fn() -> T>,
}

/// A handle to a [`States::map`] state: a map from `MK` to `MV` per key,
/// iterated in `MK` order.
pub struct MapState<MK, MV> {
    pub(crate) state: u8,
    _kv: PhantomData<fn() -> (MK, MV)>,
}

/// A handle to the step's timers ([`States::timers`]).
#[derive(Debug, Clone, Copy)]
pub struct TimerState(());

/// A handle to a named side output ([`States::side_output`]).
#[derive(Debug, Clone, Copy)]
pub struct SideOutput {
    pub(crate) index: usize,
}

macro_rules! copy_handle {
    ($name:ident < $($p:ident),* >) => {
        impl<$($p),*> Clone for $name<$($p),*> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<$($p),*> Copy for $name<$($p),*> {}
    };
}
copy_handle!(ValueState<S>);
copy_handle!(ListState<T>);
copy_handle!(MapState<MK, MV>);

impl<K> Default for States<K> {
    fn default() -> Self {
        States {
            specs: Vec::new(),
            values: Vec::new(),
            sides: Vec::new(),
            timers: false,
        }
    }
}

impl<K> States<K>
where
    K: Hash + Eq + Clone + Serialize + std::fmt::Debug + 'static,
{
    /// No states yet.
    pub fn new() -> Self {
        States::default()
    }

    fn declare(&mut self, name: &str, kind: StateKind) -> u8 {
        assert!(
            !self.specs.iter().any(|(n, _)| n == name),
            "state {name:?} is declared twice in one step"
        );
        assert!(self.specs.len() < 255, "a step has at most 255 states");
        self.specs.push((name.to_owned(), kind));
        (self.specs.len() - 1) as u8
    }

    /// Declares a state holding one `S` per key.
    pub fn value<S>(&mut self, name: &str) -> ValueState<S>
    where
        S: Serialize + DeserializeOwned + 'static,
    {
        let state = self.declare(name, StateKind::Value);
        let make: MakeValue<K> = Box::new(|args: &TableArgs<'_>, state: u8| {
            let table = Table::<K, S>::new(
                args.step,
                (args.step_id, state),
                args.groups,
                args.checkpointer.clone(),
                args.capacity,
            );
            Box::new(Values(table)) as Box<dyn ValueSlot<K>>
        });
        self.values.push((state, make));
        ValueState {
            slot: self.values.len() - 1,
            _s: PhantomData,
        }
    }

    /// Declares a state holding an appendable list of `T` per key.
    pub fn list<T: Serialize + DeserializeOwned>(&mut self, name: &str) -> ListState<T> {
        ListState {
            state: self.declare(name, StateKind::List),
            _t: PhantomData,
        }
    }

    /// Declares a state holding a map from `MK` to `MV` per key.
    pub fn map<MK, MV>(&mut self, name: &str) -> MapState<MK, MV>
    where
        MK: rill_state::SortKey,
        MV: Serialize + DeserializeOwned,
    {
        MapState {
            state: self.declare(name, StateKind::Map),
            _kv: PhantomData,
        }
    }

    /// Declares the step's event-time and epoch timers.
    pub fn timers(&mut self) -> TimerState {
        if !self.timers {
            self.declare("@timers", StateKind::Timers);
            self.timers = true;
        }
        TimerState(())
    }

    /// Declares a named side output: the step's [`crate::Processed`] holds
    /// one stream per side output, in declaration order.
    pub fn side_output(&mut self, name: &str) -> SideOutput {
        self.sides.push(name.to_owned());
        SideOutput {
            index: self.sides.len() - 1,
        }
    }
}
