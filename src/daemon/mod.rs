//! The daemon behind `rex run` and `xl rex`: rex owns its poll loop.
//!
//! Each turn: libxl's `beforepoll` → poll(2) over its fds, the signal pipe
//! and the next tick's deadline → `afterpoll` → drain libxl's events. A
//! domain-death event triggers a tick at once, so the dead domain leaves the
//! plan. SIGINT/SIGTERM stop the loop; SIGHUP rereads the policy file and
//! keeps the old policy if the new one is bad. The signal dispositions in
//! force before are restored on the way out (inside xl, xl's own). The
//! control socket's clients ([`control`]) are polled in the same loop.

pub mod args;
mod clients;
pub mod control;
pub mod metrics;
pub mod metrics_http;
pub mod reactions;
pub mod summary;
pub mod waiter;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

pub use crate::host::EventSource;
pub use args::DaemonArgs;
pub use waiter::{SignalRequest, Waiter, Wake};

use crate::config::policy::{load_policy, locate_misfits};
use crate::config::ConfigError;
use crate::display::Display;
use crate::engine::{DomId, Engine, PolicyConfig};
use crate::error_chain;
use crate::host::driver::{Driver, DriverError, TickReport};
use crate::host::{Host, HostError};
use reactions::{LoopCounters, Reactions};

/// Where `rex run` looks for its policy by default.
pub const DEFAULT_POLICY: &str = "/etc/xen/rex.cfg";

/// Why the daemon stopped with an error; nothing is changed after one.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("policy cannot be applied on this host: {0}")]
    Policy(crate::engine::PolicyError),
    #[error("poll loop")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Control(#[from] control::ControlError),
    #[error("cannot write the metrics file {}", path.display())]
    Metrics {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serve the metrics at {address} (--metrics-listen)")]
    MetricsListen {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl From<DriverError> for DaemonError {
    fn from(e: DriverError) -> Self {
        match e {
            DriverError::Host(h) => Self::Host(h),
            DriverError::Policy(p) => Self::Policy(p),
        }
    }
}

impl DaemonError {
    /// The rex_status / exit code for this error (see include/rex.h).
    pub fn status(&self) -> u8 {
        match self {
            Self::Config(_)
            | Self::Policy(_)
            | Self::Metrics { .. }
            | Self::MetricsListen { .. } => 2,
            Self::Host(_) | Self::Io(_) | Self::Control(_) => 3,
        }
    }
}

/// Reads the policy and applies `--interval`.
pub fn load(args: &DaemonArgs) -> Result<PolicyConfig, ConfigError> {
    let mut config = load_policy(&args.policy)?;
    if let Some(ms) = args.interval {
        config.host.interval_ms = ms;
    }
    Ok(config)
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    Once,
    Signal(libc::c_int),
}

/// Runs the daemon on `host` until a signal (or one tick with `--once`),
/// then writes the reallocation-time summary. `config` was loaded (and
/// checked) before the host was opened.
pub fn run<H: Host + EventSource>(
    host: H,
    config: PolicyConfig,
    args: &DaemonArgs,
    out: Box<dyn Write>,
) -> Result<Stopped, DaemonError> {
    let mut display = Display::new(out, args.json, args.verbose);
    let mut driver = match Driver::new(host, Engine::new(config.clone()), args.dry_run) {
        Ok(driver) => driver,
        Err(DriverError::Policy(e)) => {
            return Err(DaemonError::Config(locate_misfits(
                &args.policy,
                &config,
                &e,
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let mut waiter = Waiter::new()?;
    let stopped = run_loop(&mut driver, &mut display, &mut waiter, args);
    for (domid, error) in driver.withdraw_flags() {
        let text = match &error {
            None => format!("domain {domid}: uncooperative flag withdrawn (rex stops)"),
            Some(e) => format!("domain {domid}: cannot withdraw the uncooperative flag: {e}"),
        };
        log::info!("{text}");
        display.event(
            "flag_withdrawn",
            &text,
            serde_json::json!({ "domid": domid, "error": error }),
        );
    }
    // A daemon that never started (another holds the lock, the metrics
    // file cannot be written) has no summary to give.
    if !matches!(
        stopped,
        Err(DaemonError::Control(_)
            | DaemonError::Metrics { .. }
            | DaemonError::MetricsListen { .. })
    ) {
        summary::report(&mut display, driver.timings(), args.dry_run);
    }
    stopped
}

/// The loop itself, on a driver and waiter made by the caller (tests make
/// their own).
pub fn run_loop<H: Host + EventSource>(
    driver: &mut Driver<H>,
    display: &mut Display,
    waiter: &mut Waiter,
    args: &DaemonArgs,
) -> Result<Stopped, DaemonError> {
    // The lock before anything else: a second daemon changes nothing.
    let mut control = open_control(args)?;
    let mut board = control::Board::new(args.dry_run, &args.policy);
    // A metrics file that cannot be written is refused before anything is
    // changed (an empty exposition is a valid one).
    if let Some(path) = &args.metrics {
        metrics::write_atomically(path, b"").map_err(|source| DaemonError::Metrics {
            path: path.clone(),
            source,
        })?;
    }
    let mut listener = match args.metrics_listen {
        Some(address) => {
            let listener = metrics_http::MetricsListener::bind(address)
                .map_err(|source| DaemonError::MetricsListen { address, source })?;
            log::info!("metrics served at http://{}/metrics", listener.address());
            Some(listener)
        }
        None => None,
    };
    let mut metrics = (args.metrics.is_some() || listener.is_some())
        .then(|| metrics::Metrics::new(args.metrics.clone()));
    let mut metrics_failures = Failures::default();
    let started = Instant::now();
    let first = driver.tick()?;
    board.record(&first, started.elapsed());
    let config = driver.engine().config().clone();
    display.start(&first, &config);
    display.tick(&first, &config);
    let mut reactions = Reactions::default();
    reactions.ticked(first.usage.iter().map(|u| (u.domid, u.name.as_ref())));
    set_loop_counters(&mut metrics, driver, &reactions);
    export(&mut metrics, &mut metrics_failures, &first, &config);
    watch_managed(driver, &first);
    driver.recycle(first);
    if args.once {
        return Ok(Stopped::Once);
    }
    let mut interval = Duration::from_millis(driver.engine().config().host.interval_ms.max(1));
    let mut next_tick = Instant::now() + interval;
    let mut last_tick = Instant::now();
    // An early tick due (an urgent change a guest published).
    let mut early: Option<Instant> = None;
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut failures = Failures::default();
    loop {
        fds.clear();
        let mut timeout_ms = -1;
        driver.host_mut().before_poll(&mut fds, &mut timeout_ms)?;
        let host_fds = fds.len();
        if let Some(control) = &control {
            control.before_poll(&mut fds, &mut timeout_ms);
        }
        let control_fds = fds.len();
        if let Some(listener) = &listener {
            listener.before_poll(&mut fds, &mut timeout_ms);
        }
        let deadline = early.map_or(next_tick, |at| at.min(next_tick));
        let wake = waiter.wait(&mut fds, deadline, timeout_ms)?;
        log::trace!("woke: {wake:?} ({host_fds} libxl fds, timeout {timeout_ms} ms)");
        driver.host_mut().after_poll(&fds[..host_fds]);
        if let Some(server) = &mut control {
            server.after_poll(&fds[host_fds..control_fds], &mut |peer, line| {
                control::serve(line, peer, driver, &mut board, display)
            });
        }
        if let (Some(listener), Some(metrics)) = (&mut listener, &metrics) {
            listener.after_poll(&fds[control_fds..], metrics.text());
        }
        let changed = driver.host_mut().take_changed();
        if !changed.is_empty() && board.paused.is_none() && early.is_none() {
            let now = Instant::now();
            if let Some(reaction) = reactions.look(driver, &changed, now, interval) {
                let text = format!(
                    "{} (domain {}): {}: deciding before the tick",
                    reaction.name,
                    reaction.domid,
                    reaction.urgency.describe()
                );
                log::debug!("{text}");
                display.event(
                    "reaction",
                    &text,
                    serde_json::json!({ "domid": reaction.domid, "name": reaction.name }),
                );
                early = Some(Reactions::early_at(last_tick, now, interval));
            }
        }
        let deaths = driver.host_mut().take_deaths();
        let mut tick_now = !deaths.is_empty();
        for domid in &deaths {
            log::info!("domain {domid} died; it leaves the plan");
        }
        match wake {
            Wake::Signal(SignalRequest::Stop(signo)) => return Ok(Stopped::Signal(signo)),
            Wake::Signal(SignalRequest::Reload) => {
                if let Some(ms) = reload(driver, display, args) {
                    interval = Duration::from_millis(ms.max(1));
                    next_tick = Instant::now() + interval;
                }
            }
            Wake::Deadline if Instant::now() >= next_tick => {
                tick_now = true;
                early = None;
                next_tick += interval;
                // After a long stall, do not fire a burst of late ticks.
                let now = Instant::now();
                if next_tick <= now {
                    next_tick = now + interval;
                }
            }
            Wake::Deadline | Wake::Ready => {}
        }
        if early.is_some_and(|at| Instant::now() >= at) {
            early = None;
            if !tick_now {
                tick_now = true;
                reactions.counters.early_ticks += 1;
                next_tick = Instant::now() + interval;
            }
        }
        if tick_now {
            last_tick = Instant::now();
            if let Some(report) = tick(driver, display, &mut failures, &mut board) {
                reactions.ticked(report.usage.iter().map(|u| (u.domid, u.name.as_ref())));
                set_loop_counters(&mut metrics, driver, &reactions);
                let config = driver.engine().config();
                export(&mut metrics, &mut metrics_failures, &report, config);
                driver.recycle(report);
            }
        }
    }
}

/// The loop's own counters and the host's key reads, for the metrics.
fn set_loop_counters<H: Host + EventSource>(
    metrics: &mut Option<metrics::Metrics>,
    driver: &Driver<H>,
    reactions: &Reactions,
) {
    if let Some(metrics) = metrics {
        metrics.set_loop_counters(LoopCounters {
            keys: driver.host().key_counters(),
            ..reactions.counters
        });
    }
}

/// Records a tick in the metrics and rewrites their file; a write that
/// fails is logged once while it lasts (the daemon goes on).
fn export(
    metrics: &mut Option<metrics::Metrics>,
    failures: &mut Failures,
    report: &TickReport,
    config: &PolicyConfig,
) {
    let Some(metrics) = metrics else { return };
    metrics.record(report, config);
    let Some(path) = metrics.path() else { return };
    match metrics.write() {
        Ok(()) => {
            if let Some(failed) = failures.ok() {
                log::info!(
                    "the metrics file {} is written again after {failed} failed writes",
                    path.display()
                );
            }
        }
        Err(e) => {
            let text = format!("cannot write the metrics file {}: {e}", path.display());
            if failures.failed(&text) {
                log::error!("{text} (reported once while it lasts)");
            }
        }
    }
}

/// The control socket, unless `--control none`. A dry run beside a running
/// daemon goes on without one (it changes nothing); any other daemon stops.
fn open_control(args: &DaemonArgs) -> Result<Option<control::ControlServer>, DaemonError> {
    let Some(path) = &args.control else {
        return Ok(None);
    };
    match control::ControlServer::bind(path) {
        Ok(server) => Ok(Some(server)),
        Err(e @ control::ControlError::Busy(_)) if args.dry_run => {
            log::warn!("{e}; this dry run goes on without a control socket");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// One tick, reported; its report when it worked. While paused, a tick
/// observes and decides nothing.
fn tick<H: Host + EventSource>(
    driver: &mut Driver<H>,
    display: &mut Display,
    failures: &mut Failures,
    board: &mut control::Board,
) -> Option<TickReport> {
    let started = Instant::now();
    let result = if board.paused.is_some() {
        driver.observe_only()
    } else {
        driver.tick()
    };
    match result {
        Ok(report) => {
            board.record(&report, started.elapsed());
            if let Some(failed) = failures.ok() {
                log::info!("ticks work again after {failed} failed");
                display.event(
                    "tick_recovered",
                    &format!("ticks work again after {failed} failed"),
                    serde_json::json!({ "failed_ticks": failed }),
                );
            }
            let config = driver.engine().config().clone();
            display.tick(&report, &config);
            watch_managed(driver, &report);
            Some(report)
        }
        // A failed read (a domain vanishing mid-tick, xenstore hiccup) is
        // reported once while it lasts; the next tick tries again.
        Err(e) => {
            let text = error_chain(&e);
            board.failing = Some(text.clone());
            if failures.failed(&text) {
                log::error!("tick failed: {text}");
                display.event(
                    "tick_failed",
                    &format!("tick failed: {text} (reported once while it lasts)"),
                    serde_json::json!({ "error": text }),
                );
            } else {
                log::debug!("tick failed again: {text}");
            }
            None
        }
    }
}

/// Tick failures, so a failure that lasts is one line, not one a tick (a
/// log flood at one tick a second), and its end is one more.
#[derive(Debug, Default)]
pub struct Failures {
    last: Option<String>,
    in_a_row: u64,
}

impl Failures {
    /// A tick failed with `text`: whether to report it (it is new, or
    /// another error than the last).
    pub fn failed(&mut self, text: &str) -> bool {
        self.in_a_row += 1;
        if self.last.as_deref() == Some(text) {
            return false;
        }
        self.last = Some(text.to_string());
        true
    }

    /// A tick worked: how many had failed in a row before, if any.
    pub fn ok(&mut self) -> Option<u64> {
        self.last = None;
        Some(std::mem::take(&mut self.in_a_row)).filter(|&n| n > 0)
    }
}

fn watch_managed<H: Host + EventSource>(driver: &mut Driver<H>, report: &TickReport) {
    let config = driver.engine().config();
    let managed: Vec<DomId> = report
        .usage
        .iter()
        .filter(|u| u.domid != 0 && config.domain(&u.name).is_some())
        .map(|u| u.domid)
        .collect();
    driver.host_mut().watch_deaths(&managed);
}

/// SIGHUP: reread the policy. On any error the old policy stays. Returns
/// the new interval when the policy was replaced.
fn reload<H: Host + EventSource>(
    driver: &mut Driver<H>,
    display: &mut Display,
    args: &DaemonArgs,
) -> Option<u64> {
    let result = load(args).map_err(DaemonError::from).and_then(|config| {
        let info = driver.host_mut().host_info()?;
        Engine::new(config.clone())
            .validate(&info)
            .map_err(|e| DaemonError::Config(locate_misfits(&args.policy, &config, &e)))?;
        Ok(config)
    });
    match result {
        Ok(config) => {
            let ms = config.host.interval_ms;
            driver.engine_mut().set_config(config);
            log::info!("policy reloaded from {}", args.policy.display());
            display.event(
                "reload",
                &format!("policy reloaded from {}", args.policy.display()),
                serde_json::json!({ "path": args.policy.display().to_string() }),
            );
            Some(ms)
        }
        Err(e) => {
            let text = format!(
                "reload of {} failed, keeping the old policy: {e}",
                path_text(&args.policy)
            );
            log::error!("{text}");
            display.event(
                "reload_failed",
                &text,
                serde_json::json!({ "error": e.to_string() }),
            );
            None
        }
    }
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests;
