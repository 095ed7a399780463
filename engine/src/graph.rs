//! `--graph`: the job's dataflow as Mermaid or DOT, from timely's own
//! record of the operators and channels it built. The dataflow is built
//! once on one worker with no state and no connections (sources read
//! nothing, sinks write nothing) and dropped without running.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;

use timely::logging::{TimelyEvent, TimelyEventBuilder};

use crate::context::{ProcessShared, WorkerCtx};
use crate::metrics::Metrics;
use crate::sink::SinkDriver;
use crate::source::{Polled, SourceDriver};
use crate::{Error, Flow, JobArgs, Result, StopHandle};

/// How `--graph` prints the dataflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// A Mermaid flowchart (renders in GitHub Markdown).
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

/// The operators (address → name) and channels (scope, from, to) built.
#[derive(Default)]
struct Recorded {
    operators: BTreeMap<Vec<usize>, String>,
    channels: Vec<(Vec<usize>, usize, usize)>,
}

/// Builds the job's dataflow on one worker and renders it.
pub(crate) fn render<F>(name: &str, args: &JobArgs, format: GraphFormat, build: F) -> Result<String>
where
    F: Fn(&mut Flow<'_>) + Send + Sync + 'static,
{
    let args = JobArgs {
        workers: 1,
        processes: 1,
        process_id: 0,
        state_dir: None,
        ..args.clone()
    };
    let metrics = Arc::new(Metrics::new(prometheus::Registry::new()));
    let shared = Arc::new(ProcessShared::new(
        name.to_owned(),
        args,
        metrics,
        None,
        StopHandle::default(),
        rill_state::KeyGroups::default(),
    ));
    let guards = timely::execute(timely::Config::thread(), move |worker| {
        let seen = Rc::new(RefCell::new(Recorded::default()));
        let sink = seen.clone();
        if let Some(mut register) = worker.log_register() {
            register.insert::<TimelyEventBuilder, _>("timely", move |_, data| {
                for (_, event) in data.iter_mut().flat_map(|d| d.drain(..)) {
                    let mut seen = sink.borrow_mut();
                    match event {
                        TimelyEvent::Operates(op) => {
                            seen.operators.insert(op.addr, op.name);
                        }
                        TimelyEvent::Channels(ch) => {
                            seen.channels
                                .push((ch.scope_addr, ch.source.0, ch.target.0));
                        }
                        _ => {}
                    }
                }
            });
        }
        let mut ctx = WorkerCtx::new(shared.clone(), 0, 1);
        ctx.graph_only = true;
        worker.dataflow::<u64, _, _>(|scope| {
            let mut flow = Flow::new(scope, ctx.clone());
            build(&mut flow);
        });
        if let Some(mut register) = worker.log_register() {
            register.flush();
            register.remove("timely");
        }
        for id in worker.installed_dataflows() {
            worker.drop_dataflow(id);
        }
        let text = draw(&seen.borrow(), format);
        (text, shared.take_error())
    })
    .map_err(Error::Runtime)?;
    let mut results = guards.join().into_iter();
    match results.next() {
        Some(Ok((_, Some(e)))) => Err(e),
        Some(Ok((text, None))) => Ok(text),
        Some(Err(panic)) => Err(Error::WorkerPanicked(panic)),
        None => Err(Error::Runtime("no worker built the dataflow".into())),
    }
}

/// Timely's and Rill's own plumbing, left out of the picture (edges
/// through it are kept): Rill names its steps' operators `step.kind`;
/// timely's own (exchanges, concatenations, probes) have no dot.
fn plumbing(name: &str) -> bool {
    !name.contains('.') || name.starts_with("checkpoint.")
}

/// A step's label: `step (kind)`.
fn label(name: &str) -> String {
    let name = name.replace('"', "'");
    match name.rsplit_once('.') {
        Some((step, kind)) => format!("{step} ({kind})"),
        None => name,
    }
}

fn draw(seen: &Recorded, format: GraphFormat) -> String {
    // The operators of the job's dataflow, and the channels among them.
    let nodes: BTreeMap<usize, &str> = seen
        .operators
        .iter()
        .filter(|(addr, _)| addr.len() == 2)
        .map(|(addr, name)| (addr[1], name.as_str()))
        .collect();
    let mut edges: BTreeSet<(usize, usize)> = seen
        .channels
        .iter()
        .filter(|(scope, from, to)| {
            scope.len() == 1 && nodes.contains_key(from) && nodes.contains_key(to)
        })
        .map(|(_, from, to)| (*from, *to))
        .collect();
    // Bypass the plumbing: a → p → b becomes a → b.
    for (&node, _) in nodes.iter().filter(|(_, name)| plumbing(name)) {
        let into: Vec<usize> = edges.iter().filter(|e| e.1 == node).map(|e| e.0).collect();
        let out: Vec<usize> = edges.iter().filter(|e| e.0 == node).map(|e| e.1).collect();
        edges.retain(|e| e.0 != node && e.1 != node);
        edges.extend(into.iter().flat_map(|&a| out.iter().map(move |&b| (a, b))));
    }
    let shown: BTreeMap<usize, &str> = nodes.into_iter().filter(|(_, n)| !plumbing(n)).collect();
    let mut out = String::new();
    match format {
        GraphFormat::Mermaid => {
            out.push_str("flowchart LR\n");
            for (id, name) in &shown {
                out.push_str(&format!("  n{id}[\"{}\"]\n", label(name)));
            }
            for (a, b) in &edges {
                out.push_str(&format!("  n{a} --> n{b}\n"));
            }
        }
        GraphFormat::Dot => {
            out.push_str("digraph job {\n  rankdir=LR;\n  node [shape=box];\n");
            for (id, name) in &shown {
                out.push_str(&format!("  n{id} [label=\"{}\"];\n", label(name)));
            }
            for (a, b) in &edges {
                out.push_str(&format!("  n{a} -> n{b};\n"));
            }
            out.push_str("}\n");
        }
    }
    out
}

/// A source that reads nothing (`--graph`).
pub(crate) struct NoInput;

impl<D: 'static> SourceDriver<D> for NoInput {
    fn poll(&mut self, _out: &mut Vec<D>) -> Result<Polled> {
        Ok(Polled::Finished)
    }
}

/// A sink that writes nothing (`--graph`).
pub(crate) struct Discard;

impl<D: 'static> SinkDriver<D> for Discard {
    fn write(&mut self, _epoch: u64, batch: &mut Vec<D>) -> Result<()> {
        batch.clear();
        Ok(())
    }
}
