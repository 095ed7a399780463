//! `rill run`: starts the processes of a job on this machine and
//! supervises them.
//!
//! Each process gets `-n/-p/-w/--hosts` (a hosts file with free local
//! ports, new for every start; or the user's, of which only the processes
//! on this host start here) and, with `--state-dir`, the state
//! directory; its output lines are prefixed with `[p]`. When a process
//! fails in a way a restart can help with (exit code
//! [`rill::EXIT_RESTART`], or death by a signal), the others are killed and
//! all are started again: they resume from the last complete checkpoint.
//! Restarts back off exponentially and stop at `--max-restarts`. Any other
//! failure stops everything, and `rill run` exits with it. The first
//! SIGINT/SIGTERM stops the job gracefully (each process gets SIGTERM); a
//! second one kills it.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest wait between two restarts.
const MOST_BACKOFF: Duration = Duration::from_secs(60);

/// What `rill run` runs, and how it restarts it.
pub struct Plan {
    /// Processes, and worker threads per process.
    pub processes: usize,
    pub workers: usize,
    /// The job binary and its own arguments.
    pub binary: PathBuf,
    pub args: Vec<String>,
    /// Passed to every process as `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// The processes' addresses (a hosts file): only the processes whose
    /// address is on this host are started here. `None`: all of them, on
    /// free local ports chosen for each start.
    pub hosts: Option<PathBuf>,
    /// Restarts allowed before `rill run` gives up.
    pub max_restarts: u32,
    /// The wait before the first restart; doubled after each.
    pub backoff: Duration,
}

/// How one start of the job ended.
enum Ended {
    /// Every process exited with success (the input ended, or a stop).
    Done,
    /// A process failed: which, how, and whether a restart can help.
    Failed {
        process: usize,
        status: ExitStatus,
        restart: bool,
    },
}

/// Whether a process that ended with `status` may succeed if restarted.
fn restartable(status: ExitStatus) -> bool {
    status.signal().is_some() || status.code() == Some(i32::from(rill::EXIT_RESTART))
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The job's arguments for process `p`, and its metrics address: a
/// `--metrics-addr HOST:PORT` (or `RILL_METRICS_ADDR`) becomes
/// `HOST:PORT+p`, so that the processes of one host do not collide.
fn metrics_per_process(args: &[String], p: usize) -> Result<(Vec<String>, Option<String>)> {
    let shift = |addr: &str| -> Result<String> {
        let (host, port) = addr
            .rsplit_once(':')
            .and_then(|(h, port)| Some((h, port.parse::<u16>().ok()?)))
            .with_context(|| format!("--metrics-addr {addr} is not HOST:PORT"))?;
        let port = u16::try_from(usize::from(port) + p)
            .ok()
            .filter(|_| port != 0)
            .with_context(|| {
                format!(
                    "--metrics-addr {addr}: no port {} for process {p}",
                    port as usize + p
                )
            })?;
        Ok(format!("{host}:{port}"))
    };
    let mut out = Vec::with_capacity(args.len());
    let mut found = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--metrics-addr" {
            let value = rest.next().context("--metrics-addr needs HOST:PORT")?;
            found = Some(shift(value)?);
        } else if let Some(value) = arg.strip_prefix("--metrics-addr=") {
            found = Some(shift(value)?);
        } else {
            out.push(arg.clone());
        }
    }
    if found.is_none() {
        if let Ok(value) = std::env::var("RILL_METRICS_ADDR") {
            found = Some(shift(&value)?);
        }
    }
    Ok((out, found))
}

/// The processes of the hosts file `file` whose address is on this host
/// (one this host can listen on).
fn local_processes(file: &Path, processes: usize) -> Result<Vec<usize>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the hosts file {}", file.display()))?;
    let addresses: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if addresses.len() != processes {
        bail!(
            "the hosts file {} names {} processes, but -n is {processes}",
            file.display(),
            addresses.len()
        );
    }
    let mut here = Vec::new();
    for (p, address) in addresses.iter().enumerate() {
        let Some((host, _)) = address.rsplit_once(':') else {
            bail!(
                "line {} of {} is not host:port: {address}",
                p + 1,
                file.display()
            );
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if TcpListener::bind((host, 0)).is_ok() {
            here.push(p);
        }
    }
    if here.is_empty() {
        bail!(
            "no address in the hosts file {} is on this host: {}",
            file.display(),
            addresses.join(", ")
        );
    }
    eprintln!("rill: this host runs processes {here:?} of {processes}");
    Ok(here)
}

/// Runs the job until it succeeds, fails for good, or is stopped.
pub fn supervise(plan: &Plan) -> Result<()> {
    if plan.processes == 0 || plan.workers == 0 {
        bail!("--processes and --workers must be at least 1");
    }
    let dir = std::env::temp_dir().join(format!("rill-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // Set by each signal, taken by the loops below.
    let signals = Arc::new(AtomicUsize::new(0));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_usize(signal, signals.clone(), 1)
            .with_context(|| format!("handling signal {signal}"))?;
    }
    let result = restart_loop(plan, &dir, &signals);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn restart_loop(plan: &Plan, dir: &Path, signals: &AtomicUsize) -> Result<()> {
    let mut delay = plan.backoff;
    for attempt in 0.. {
        let stopping = match run_once(plan, dir, signals, attempt)? {
            (Ended::Done, _) => return Ok(()),
            (
                Ended::Failed {
                    process, status, ..
                },
                true,
            ) => {
                bail!("process {process} failed while the job was stopping: {status}")
            }
            (
                Ended::Failed {
                    process,
                    status,
                    restart: false,
                },
                _,
            ) => bail!(
                "process {process} failed: {status}; a restart cannot help, so rill run stops"
            ),
            (
                Ended::Failed {
                    process, status, ..
                },
                false,
            ) => {
                if attempt >= plan.max_restarts {
                    bail!(
                        "process {process} failed: {status}; gave up after {} restarts (--max-restarts)",
                        plan.max_restarts
                    );
                }
                let resume = match &plan.state_dir {
                    Some(d) => match crate::checkpoints::resume_epoch(d) {
                        Ok(Some(e)) => format!("resumes from epoch {e}"),
                        Ok(None) => "starts empty (no complete checkpoint)".to_owned(),
                        Err(e) => format!("resume epoch unknown ({e})"),
                    },
                    None => "starts without state (no --state-dir)".to_owned(),
                };
                eprintln!(
                    "rill: process {process} failed ({status}); restart {} of {} in {delay:?}; the job {resume}",
                    attempt + 1,
                    plan.max_restarts
                );
                wait_unless_signalled(delay, signals)
            }
        };
        if stopping {
            eprintln!("rill: stopped before restarting");
            return Ok(());
        }
        delay = (delay * 2).min(MOST_BACKOFF);
    }
    unreachable!("the loop returns")
}

/// Sleeps `delay`; true if a signal came meanwhile.
fn wait_unless_signalled(delay: Duration, signals: &AtomicUsize) -> bool {
    let until = Instant::now() + delay;
    while Instant::now() < until {
        if signals.swap(0, Ordering::SeqCst) > 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Copies `stream`'s lines to stderr (or stdout), prefixed with `[p]`.
fn forward(p: usize, stream: impl Read + Send + 'static, to_stdout: bool) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream)
            .lines()
            .map_while(std::result::Result::ok)
        {
            if to_stdout {
                println!("[{p}] {line}");
            } else {
                eprintln!("[{p}] {line}");
            }
        }
    });
}

/// Starts every process once (after `restarts` restarts) and waits for the
/// job to end. Returns how, and whether a stop was asked for.
fn run_once(
    plan: &Plan,
    dir: &Path,
    signals: &AtomicUsize,
    restarts: u32,
) -> Result<(Ended, bool)> {
    let (hosts, here) = match &plan.hosts {
        Some(file) => (file.clone(), local_processes(file, plan.processes)?),
        None => {
            let hosts = dir.join("hosts.txt");
            let mut lines = String::new();
            for _ in 0..plan.processes {
                lines.push_str(&format!("127.0.0.1:{}\n", free_port()?));
            }
            std::fs::write(&hosts, lines)?;
            (hosts, (0..plan.processes).collect())
        }
    };
    let mut children: Vec<(usize, Child)> = Vec::new();
    for p in here {
        let mut command = Command::new(&plan.binary);
        // The job's `rill_restarts` metric.
        command.env("RILL_RESTARTS", restarts.to_string());
        let (args, metrics) = metrics_per_process(&plan.args, p)?;
        if let Some(addr) = metrics {
            eprintln!("rill: process {p} serves metrics at http://{addr}/metrics");
            command.env("RILL_METRICS_ADDR", &addr);
        }
        command.args(&args).args([
            "-n",
            &plan.processes.to_string(),
            "-p",
            &p.to_string(),
            "-w",
            &plan.workers.to_string(),
        ]);
        if let Some(d) = &plan.state_dir {
            command.arg("--state-dir").arg(d);
        }
        let mut child = command
            .arg("--hosts")
            .arg(&hosts)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Not the terminal's group: Ctrl-C reaches them only through us.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", plan.binary.display()))?;
        eprintln!("rill: started process {p} (pid {})", child.id());
        if let Some(out) = child.stdout.take() {
            forward(p, out, true);
        }
        if let Some(err) = child.stderr.take() {
            forward(p, err, false);
        }
        children.push((p, child));
    }
    let mut failure: Option<Ended> = None;
    let mut stopping = false;
    while !children.is_empty() {
        if signals.swap(0, Ordering::SeqCst) > 0 {
            if stopping {
                eprintln!("rill: killing the processes");
                for (_, c) in &mut children {
                    let _ = c.kill();
                }
            } else {
                stopping = true;
                eprintln!(
                    "rill: stopping the job (a last checkpoint, then exit); signal again to kill it"
                );
                for (p, c) in &children {
                    let pid = rustix::process::Pid::from_child(c);
                    if let Err(e) =
                        rustix::process::kill_process(pid, rustix::process::Signal::TERM)
                    {
                        eprintln!("rill: cannot signal process {p}: {e}");
                    }
                }
            }
        }
        let mut i = 0;
        while i < children.len() {
            let Some(status) = children[i].1.try_wait()? else {
                i += 1;
                continue;
            };
            let (p, _) = children.remove(i);
            eprintln!("rill: process {p} exited: {status}");
            // The first failure is the cause, and the rest only follow
            // it (those killed below die by a signal); but a failure that
            // a restart cannot help, seen in the same round, wins.
            let first = failure.is_none();
            let worse = matches!(failure, Some(Ended::Failed { restart: true, .. }))
                && !restartable(status);
            if !status.success() && (first || worse) {
                failure = Some(Ended::Failed {
                    process: p,
                    status,
                    restart: restartable(status),
                });
            }
            if first && failure.is_some() {
                for (_, c) in &mut children {
                    let _ = c.kill();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((failure.unwrap_or(Ended::Done), stopping))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_process_gets_its_own_metrics_port() {
        let args: Vec<String> = ["--input", "x", "--metrics-addr", "127.0.0.1:9100"]
            .map(String::from)
            .to_vec();
        let (rest, addr) = metrics_per_process(&args, 2).unwrap();
        assert_eq!(rest, ["--input", "x"]);
        assert_eq!(addr.as_deref(), Some("127.0.0.1:9102"));
        let (_, addr) = metrics_per_process(&["--metrics-addr=[::1]:80".into()], 1).unwrap();
        assert_eq!(addr.as_deref(), Some("[::1]:81"));
        assert!(metrics_per_process(&["--metrics-addr".into(), "nope".into()], 0).is_err());
    }

    #[test]
    fn a_restart_helps_after_a_signal_or_the_restart_code_only() {
        assert!(restartable(ExitStatus::from_raw(9))); // killed by SIGKILL
        assert!(restartable(ExitStatus::from_raw(
            i32::from(rill::EXIT_RESTART) << 8
        )));
        assert!(!restartable(ExitStatus::from_raw(1 << 8)));
        assert!(!restartable(ExitStatus::from_raw(2 << 8)));
    }
}
