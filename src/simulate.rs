//! Replays a [`Scenario`] on the simulated host, with rex and with static
//! allocation, and collects what the paper's tables report.

use std::collections::BTreeMap;

use crate::config::scenario::{Event, EventKind, Scenario};
use crate::display::Display;
use crate::engine::{Action, Engine, Level};
use crate::host::driver::{error_chain, Driver, DriverError};
use crate::host::sim::{SimError, SimHost};

/// How the guests' resources are managed during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// rex reallocates every tick.
    Rex,
    /// The starting allocation is kept (rex observes but changes nothing).
    Static,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Rex => "rex",
            Mode::Static => "static",
        }
    }
}

/// One VM's results over all repetitions of one mode.
#[derive(Debug, Clone, Default)]
pub struct VmResult {
    pub name: String,
    pub sla_ms: Option<f64>,
    /// Mean response time of each repetition (the paper's unit: n = runs).
    pub run_means_ms: Vec<f64>,
    /// Requests completed in the measured window, all repetitions.
    pub requests: usize,
    /// Changes rex applied to this VM, all repetitions.
    pub reallocations: usize,
}

/// One point of the first repetition's timeline, for the plot.
#[derive(Debug, Clone)]
pub struct TimelinePoint {
    pub t_s: f64,
    pub vm: String,
    pub cap: u32,
    pub mem_mib: f64,
    /// Mean response of requests completed during the tick; None if none.
    pub response_ms: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct RunResult {
    pub mode: Mode,
    pub vms: Vec<VmResult>,
    pub timeline: Vec<TimelinePoint>,
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error(transparent)]
    Start(#[from] DriverError),
    #[error("simulated host refused the scenario: {0}")]
    Host(#[from] SimError),
    #[error("{location}: event on `{vm}' failed: {source}")]
    Event {
        location: String,
        vm: String,
        #[source]
        source: SimError,
    },
    #[error("tick failed: {0}")]
    Tick(String),
}

/// Checks that the scenario's host accepts its VMs and that the policy
/// fits the host, without running anything.
pub fn preflight(scenario: &Scenario) -> Result<(), SimulateError> {
    let host = SimHost::new(scenario.sim.clone())?;
    Driver::new(host, Engine::new(scenario.policy.clone()), true)?;
    Ok(())
}

/// Runs every repetition of `scenario` in `mode`. The first repetition's
/// live display goes to `display`, if given.
pub fn run(
    scenario: &Scenario,
    mode: Mode,
    mut display: Option<&mut Display>,
) -> Result<RunResult, SimulateError> {
    let mut per_vm: BTreeMap<String, VmResult> = BTreeMap::new();
    for vm in scenario.sim.vms.iter().chain(&scenario.later_vms) {
        per_vm.insert(
            vm.name.clone(),
            VmResult {
                name: vm.name.clone(),
                sla_ms: scenario.policy.domain(&vm.name).and_then(|d| d.sla_ms),
                ..Default::default()
            },
        );
    }
    let mut timeline = Vec::new();
    for rep in 0..scenario.repetitions {
        let show = if rep == 0 {
            display.as_deref_mut()
        } else {
            None
        };
        let record = (rep == 0).then_some(&mut timeline);
        run_once(scenario, mode, rep, show, record, &mut per_vm)?;
    }
    Ok(RunResult {
        mode,
        vms: per_vm.into_values().collect(),
        timeline,
    })
}

fn run_once(
    scenario: &Scenario,
    mode: Mode,
    rep: u32,
    mut display: Option<&mut Display>,
    mut timeline: Option<&mut Vec<TimelinePoint>>,
    per_vm: &mut BTreeMap<String, VmResult>,
) -> Result<(), SimulateError> {
    let mut sim = scenario.sim.clone();
    sim.seed = sim.seed.wrapping_add(rep as u64);
    let host = SimHost::new(sim)?;
    let engine = Engine::new(scenario.policy.clone());
    let mut driver = Driver::new(host, engine, mode == Mode::Static)?;

    let interval_ms = scenario.policy.host.interval_ms;
    let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut events = scenario.events.iter().peekable();
    let mut now_ms = 0;
    let mut first = true;
    while now_ms <= scenario.duration_ms {
        while let Some(event) = events.next_if(|e| e.at_ms <= now_ms) {
            apply_event(&mut driver, scenario, event)?;
        }
        let report = driver
            .tick()
            .map_err(|e| SimulateError::Tick(error_chain(&e)))?;
        if let Some(d) = display.as_deref_mut() {
            if first {
                d.start(&report, driver.engine().config());
            }
            d.tick(&report, driver.engine().config());
        }
        first = false;
        if mode == Mode::Rex {
            for applied in report.applied.iter().filter(|a| a.error.is_none()) {
                if let Some(vm) = per_vm.get_mut(&applied.change.name) {
                    vm.reallocations += 1;
                }
            }
        }
        if now_ms == scenario.duration_ms {
            break;
        }
        let step = interval_ms.min(scenario.duration_ms - now_ms);
        driver.host_mut().advance(step * 1_000_000);
        now_ms += step;

        let mut tick_sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        for s in driver.host_mut().take_samples() {
            let t = tick_sums.entry(s.vm.clone()).or_default();
            t.0 += s.response_ms;
            t.1 += 1;
            if s.at_ns >= scenario.measure_from_ms * 1_000_000 {
                let m = sums.entry(s.vm).or_default();
                m.0 += s.response_ms;
                m.1 += 1;
            }
        }
        if let Some(points) = timeline.as_deref_mut() {
            for u in report.usage.iter().filter(|u| u.domid != 0) {
                let (sum, n) = tick_sums.get(&u.name).copied().unwrap_or_default();
                let cap = (!report.dry_run)
                    .then(|| applied_cap(&report.applied, u.domid))
                    .flatten()
                    .unwrap_or(u.sched.cap);
                points.push(TimelinePoint {
                    t_s: now_ms as f64 / 1000.0,
                    vm: u.name.clone(),
                    cap,
                    mem_mib: u.mem_current_kb as f64 / 1024.0,
                    response_ms: (n > 0).then(|| sum / n as f64),
                });
            }
        }
    }
    for (name, (sum, n)) in sums {
        if let Some(vm) = per_vm.get_mut(&name) {
            if n > 0 {
                vm.run_means_ms.push(sum / n as f64);
                vm.requests += n;
            }
        }
    }
    Ok(())
}

/// The cap a tick's changes left a domain at, if they changed it.
fn applied_cap(applied: &[crate::host::driver::AppliedChange], domid: u32) -> Option<u32> {
    applied
        .iter()
        .rev()
        .filter(|a| a.change.domid == domid && a.error.is_none())
        .find_map(|a| match a.change.action {
            Action::Cap { to, .. } => Some(to),
            _ => None,
        })
}

fn apply_event(
    driver: &mut Driver<SimHost>,
    scenario: &Scenario,
    event: &Event,
) -> Result<(), SimulateError> {
    let fail = |source| SimulateError::Event {
        location: event.location.clone(),
        vm: event.vm.clone(),
        source,
    };
    let host = driver.host_mut();
    match &event.kind {
        EventKind::Clients(n) => host.set_clients(&event.vm, *n).map_err(fail)?,
        EventKind::Destroy => host.destroy_domain(&event.vm).map_err(fail)?,
        EventKind::Create => {
            let vm = scenario
                .later_vms
                .iter()
                .find(|v| v.name == event.vm)
                .cloned()
                .ok_or_else(|| fail(SimError::UnknownVm(event.vm.clone())))?;
            host.create_domain(vm).map_err(fail)?;
        }
        EventKind::BalloonStuck(stuck) => {
            host.set_balloon_stuck(&event.vm, *stuck).map_err(fail)?
        }
        EventKind::GuestValues {
            free,
            total,
            response,
        } => host
            .set_guest_values(&event.vm, free.clone(), total.clone(), response.clone())
            .map_err(fail)?,
        EventKind::Level { cap, mem_kb } => {
            let engine = driver.engine_mut();
            let Some(current) = engine.config().domain(&event.vm).map(|d| d.level) else {
                return Err(fail(SimError::UnknownVm(event.vm.clone())));
            };
            let level = Level {
                load: current.load,
                cap_pct: cap.unwrap_or(current.cap_pct),
                mem_kb: mem_kb.unwrap_or(current.mem_kb),
            };
            engine.set_level(&event.vm, level);
        }
    }
    Ok(())
}
