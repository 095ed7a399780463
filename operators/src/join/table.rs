//! [`TableJoin`]: each record of a stream meets the latest value of its
//! key in a table stream (a compacted topic, say): the table side's
//! records replace the key's value, the stream side's are emitted with it.

use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::keyed::{Context, States, ValueState};
use crate::process::LogicResult;
use crate::process2::Process2;

/// A stream-table join's logic and its one state, the table.
pub struct TableJoin<T> {
    table: ValueState<T>,
}

impl<T: Serialize + DeserializeOwned + Clone + 'static> TableJoin<T> {
    /// Declares the table's state in `states`.
    pub fn new<K>(states: &mut States<K>) -> Self
    where
        K: Hash + Eq + Clone + Serialize + std::fmt::Debug + 'static,
    {
        TableJoin {
            table: states.value("table"),
        }
    }
}

impl<K, V, T> Process2<K, V, T, (V, Option<T>), ()> for TableJoin<T>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
    T: Serialize + DeserializeOwned + Clone + 'static,
{
    fn on_left(&mut self, cx: &mut Context<'_, K, (V, Option<T>), ()>, v: V) -> LogicResult {
        let latest = cx.value(self.table).get()?;
        cx.emit((v, latest));
        Ok(())
    }

    fn on_right(&mut self, cx: &mut Context<'_, K, (V, Option<T>), ()>, t: T) -> LogicResult {
        cx.value(self.table).set(t)?;
        Ok(())
    }
}
