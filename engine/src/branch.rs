//! `branch`: split a stream by named predicates.

use rill_operators::{BranchStep, Predicate};
use std::collections::BTreeMap;
use timely::dataflow::operators::generic::operator::empty;
use timely::dataflow::Scope;

use crate::context::WorkerCtx;

use crate::stream::{Progress, Stream};
use crate::Error;

/// A named route and the predicate of its records.
type Route<K, V> = (String, Predicate<(K, V, u64)>);

/// A branch being built: routes are tried in the order they were added.
///
/// ```
/// let out = rill::testing::run(2, |flow| {
///     let mut parts = flow
///         .source_iter("numbers", 0..10u32)
///         .branch("size")
///         .when("small", |x| *x < 3)
///         .when("big", |x| *x > 7)
///         .split();
///     let small = parts.take("small");
///     let other = parts.other();
///     small.merge("small-or-middle", [other])
/// })
/// .unwrap();
/// let mut values: Vec<u32> = out.into_iter().map(|(_, v)| v).collect();
/// values.sort();
/// assert_eq!(values, vec![0, 1, 2, 3, 4, 5, 6, 7]);
/// ```
pub struct Branch<'s, K, V> {
    stream: Stream<'s, K, V>,
    name: String,
    routes: Vec<Route<K, V>>,
}

impl<'s, K: 'static, V: 'static> Branch<'s, K, V> {
    pub(crate) fn new(stream: Stream<'s, K, V>, name: &str) -> Self {
        Branch {
            stream,
            name: name.to_owned(),
            routes: Vec::new(),
        }
    }

    /// Adds a route: records whose value `predicate` accepts (and no earlier
    /// route did) go to the output named `route`.
    pub fn when(mut self, route: &str, mut predicate: impl FnMut(&V) -> bool + 'static) -> Self {
        self.routes.push((
            route.to_owned(),
            Box::new(move |(_, v, _): &(K, V, u64)| predicate(v)),
        ));
        self
    }

    /// Builds the branch. Records no route accepts go to [`Branches::other`].
    pub fn split(self) -> Branches<'s, K, V> {
        let step = self.stream.step(&self.name);
        let (names, predicates): (Vec<String>, Vec<_>) = self.routes.into_iter().unzip();
        let (outs, other) = self.stream.inner.branch_step(&step, predicates);
        let ctx = self.stream.ctx;
        let progress = self.stream.progress;
        let (routed, watermarks) = (self.stream.routed, self.stream.watermarks);
        let keep = |inner| Stream {
            inner,
            ctx: ctx.clone(),
            progress: progress.clone(),
            routed,
            watermarks: watermarks.clone(),
        };
        Branches {
            scope: other.scope(),
            ctx: ctx.clone(),
            progress: progress.clone(),
            name: self.name,
            routes: names
                .into_iter()
                .zip(outs)
                .map(|(n, s)| (n, keep(s)))
                .collect(),
            other: Some(keep(other)),
        }
    }
}

/// The outputs of a branch, by route name.
pub struct Branches<'s, K, V> {
    scope: Scope<'s, u64>,
    ctx: WorkerCtx,
    progress: Progress<'s>,
    name: String,
    routes: BTreeMap<String, Stream<'s, K, V>>,
    other: Option<Stream<'s, K, V>>,
}

impl<'s, K: 'static, V: 'static> Branches<'s, K, V> {
    /// The output of route `route`. Asking for a route that does not exist
    /// (or twice for one) stops the job with an error naming it.
    pub fn take(&mut self, route: &str) -> Stream<'s, K, V> {
        match self.routes.remove(route) {
            Some(s) => s,
            None => self.missing(&format!("route {route:?}")),
        }
    }

    /// The records no route accepted (once).
    pub fn other(&mut self) -> Stream<'s, K, V> {
        match self.other.take() {
            Some(s) => s,
            None => self.missing("the other output"),
        }
    }

    fn missing(&self, what: &str) -> Stream<'s, K, V> {
        self.ctx.shared.fail(Error::Job(format!(
            "branch {}: {what} does not exist or was already taken",
            self.name
        )));
        Stream::new(empty(self.scope), self.ctx.clone(), self.progress.clone())
    }
}
