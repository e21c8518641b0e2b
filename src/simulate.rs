//! Replays a [`Scenario`] on the simulated host, with rex and with static
//! allocation, and collects what the paper's tables report.

use std::collections::BTreeMap;

use crate::config::scenario::{Event, EventKind, Scenario};
use crate::display::Display;
use crate::engine::{Action, Engine, Level};
use crate::error_chain;
use crate::host::driver::{Driver, DriverError};
use crate::host::sim::{SimError, SimHost};

/// The control law a run uses: rex's, or a baseline (`static` keeps the
/// starting allocation).
pub use crate::engine::Law;

/// Seconds in a row within the SLA that count as "met again" after a load step.
const RECOVERED_AFTER_S: usize = 3;

/// One VM's results over all repetitions of one law.
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
    /// Every response time in the measured window, all repetitions.
    pub samples_ms: Vec<f64>,
    /// Per repetition: seconds of the measured window whose mean response
    /// exceeded the SLA.
    pub violation_s: Vec<f64>,
    /// Per load step of this VM (all repetitions): seconds from the step
    /// until the SLA was met for `RECOVERED_AFTER_S` seconds in a row (to
    /// the end of the run when it never was).
    pub recovery_s: Vec<f64>,
    /// Cap changes against the direction of the one before, all repetitions.
    pub reversals: usize,
    /// Σ over ticks of (cap − guaranteed cap) × interval, all repetitions.
    pub cpu_above_guarantee_pct_s: f64,
    /// Σ over ticks of (memory − guaranteed memory) × interval, MiB·s.
    pub mem_above_guarantee_mib_s: f64,
    /// Times the guest ran out of memory (its OOM killer fired), all
    /// repetitions.
    pub oom_kills: usize,
    /// Times rex found the guest's balloon uncooperative (and published
    /// it), all repetitions.
    pub uncooperative: usize,
}

impl VmResult {
    /// The 95th percentile of the response times, ms.
    pub fn p95_ms(&self) -> Option<f64> {
        crate::stats::percentile(&self.samples_ms, 95.0)
    }

    /// Mean over repetitions of the SLA-violation seconds.
    pub fn mean_violation_s(&self) -> f64 {
        mean(&self.violation_s)
    }

    /// Mean time to recover from a load step, if there was one.
    pub fn mean_recovery_s(&self) -> Option<f64> {
        (!self.recovery_s.is_empty()).then(|| mean(&self.recovery_s))
    }
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
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
    pub law: Law,
    pub repetitions: u32,
    /// Seconds per repetition in the measured window.
    pub measured_s: f64,
    pub vms: Vec<VmResult>,
    pub timeline: Vec<TimelinePoint>,
}

impl RunResult {
    pub fn vm(&self, name: &str) -> Option<&VmResult> {
        self.vms.iter().find(|v| v.name == name)
    }

    /// Mean over repetitions of the SLA-violation seconds of every VM.
    pub fn violation_s(&self) -> f64 {
        self.vms.iter().map(VmResult::mean_violation_s).sum()
    }
}

/// The timeline (for the plot) keeps at most this many VMs.
const TIMELINE_VMS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error(transparent)]
    Start(#[from] DriverError),
    #[error("simulated host refused the scenario")]
    Host(#[from] SimError),
    #[error("{location}: event on `{vm}' failed")]
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

/// Runs every repetition of `scenario` under `law`. The first repetition's
/// live display goes to `display`, if given.
pub fn run(
    scenario: &Scenario,
    law: Law,
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
        run_once(scenario, law, rep, show, record, &mut per_vm)?;
    }
    Ok(RunResult {
        law,
        repetitions: scenario.repetitions,
        measured_s: scenario
            .duration_ms
            .saturating_sub(scenario.measure_from_ms) as f64
            / 1000.0,
        vms: per_vm.into_values().collect(),
        timeline,
    })
}

fn run_once(
    scenario: &Scenario,
    law: Law,
    rep: u32,
    mut display: Option<&mut Display>,
    mut timeline: Option<&mut Vec<TimelinePoint>>,
    per_vm: &mut BTreeMap<String, VmResult>,
) -> Result<(), SimulateError> {
    let mut sim = scenario.sim.clone();
    sim.seed = sim.seed.wrapping_add(rep as u64);
    let host = SimHost::new(sim)?;
    let engine = Engine::with_law(scenario.policy.clone(), law);
    let mut driver = Driver::new(host, engine, false)?;

    let interval_ms = scenario.policy.host.interval_ms;
    let seconds = scenario.duration_ms.div_ceil(1000) as usize + 1;
    let mut bins: BTreeMap<String, Vec<(f64, u32)>> = BTreeMap::new();
    let mut last_direction: BTreeMap<u32, bool> = BTreeMap::new();
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
        for applied in report.applied.iter().filter(|a| a.error.is_none()) {
            let Some(vm) = per_vm.get_mut(&*applied.change.name) else {
                continue;
            };
            vm.reallocations += 1;
            if applied.change.action
                == (Action::BalloonFlag {
                    uncooperative: true,
                })
            {
                vm.uncooperative += 1;
            }
            if let Action::Cap { from, to } = applied.change.action {
                let up = to > from;
                let domid = applied.change.domid;
                if last_direction
                    .insert(domid, up)
                    .is_some_and(|was| was != up)
                {
                    vm.reversals += 1;
                }
            }
        }
        if now_ms == scenario.duration_ms {
            break;
        }
        let step = interval_ms.min(scenario.duration_ms - now_ms);
        driver.host_mut().advance(step * 1_000_000);
        now_ms += step;

        let measured = now_ms > scenario.measure_from_ms;
        for u in report.usage.iter().filter(|u| u.domid != 0 && measured) {
            let Some(policy) = driver.engine().domain_policy(&u.name) else {
                continue;
            };
            let cap = applied_cap(&report.applied, u.domid).unwrap_or(u.sched.cap);
            let target = applied_memory(&report.applied, u.domid).unwrap_or(u.mem_target_kb);
            let secs = step as f64 / 1000.0;
            if let Some(vm) = per_vm.get_mut(&*u.name) {
                vm.cpu_above_guarantee_pct_s +=
                    f64::from(cap.saturating_sub(policy.guaranteed_cap())) * secs;
                vm.mem_above_guarantee_mib_s +=
                    target.saturating_sub(policy.guaranteed_mem_kb()) as f64 / 1024.0 * secs;
            }
        }

        let mut tick_sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        for s in driver.host_mut().take_samples() {
            if timeline.is_some() {
                let t = tick_sums.entry(s.vm.clone()).or_default();
                t.0 += s.response_ms;
                t.1 += 1;
            }
            let second = (s.at_ns / 1_000_000_000) as usize;
            let bin = bins
                .entry(s.vm.clone())
                .or_insert_with(|| vec![(0.0, 0); seconds]);
            if let Some(b) = bin.get_mut(second) {
                b.0 += s.response_ms;
                b.1 += 1;
            }
            if s.at_ns >= scenario.measure_from_ms * 1_000_000 {
                if let Some(vm) = per_vm.get_mut(&s.vm) {
                    vm.samples_ms.push(s.response_ms);
                }
            }
        }
        if let Some(points) = timeline.as_deref_mut() {
            for u in report
                .usage
                .iter()
                .filter(|u| u.domid != 0)
                .take(TIMELINE_VMS)
            {
                let (sum, n) = tick_sums.get(&*u.name).copied().unwrap_or_default();
                let cap = applied_cap(&report.applied, u.domid).unwrap_or(u.sched.cap);
                points.push(TimelinePoint {
                    t_s: now_ms as f64 / 1000.0,
                    vm: u.name.to_string(),
                    cap,
                    mem_mib: u.mem_current_kb as f64 / 1024.0,
                    response_ms: (n > 0).then(|| sum / n as f64),
                });
            }
        }
    }
    let from_s = (scenario.measure_from_ms / 1000) as usize;
    let to_s = (scenario.duration_ms / 1000) as usize;
    for (name, vm) in per_vm.iter_mut() {
        vm.oom_kills += driver.host_mut().oom_kills(name) as usize;
        let bin = bins.get(name);
        if let Some(bin) = bin {
            let (sum, n) = bin[from_s.min(bin.len())..]
                .iter()
                .fold((0.0, 0u32), |acc, b| (acc.0 + b.0, acc.1 + b.1));
            if n > 0 {
                vm.run_means_ms.push(sum / f64::from(n));
                vm.requests += n as usize;
            }
        }
        let Some(sla) = vm.sla_ms else { continue };
        let over = |b: &(f64, u32)| b.1 > 0 && b.0 / f64::from(b.1) > sla;
        let violations = bin.map_or(0, |bin| {
            bin[from_s.min(bin.len())..to_s.min(bin.len())]
                .iter()
                .filter(|b| over(b))
                .count()
        });
        vm.violation_s.push(violations as f64);
        for event in load_steps(scenario, name) {
            let start = (event.at_ms / 1000) as usize;
            let recovered = bin.and_then(|bin| {
                (start..to_s.min(bin.len())).find(|&t| {
                    (t..t + RECOVERED_AFTER_S).all(|u| bin.get(u).is_some_and(|b| !over(b)))
                })
            });
            let at = recovered.unwrap_or(to_s);
            vm.recovery_s
                .push((at as f64 * 1000.0 - event.at_ms as f64).max(0.0) / 1000.0);
        }
    }
    Ok(())
}

/// The events that raise `vm`'s number of clients.
fn load_steps<'a>(scenario: &'a Scenario, vm: &str) -> Vec<&'a Event> {
    let mut clients = scenario
        .sim
        .vms
        .iter()
        .find(|v| v.name == vm)
        .map_or(0, |v| v.clients);
    let mut steps = Vec::new();
    for event in scenario.events.iter().filter(|e| e.vm == vm) {
        if let EventKind::Clients(n) = event.kind {
            if n > clients {
                steps.push(event);
            }
            clients = n;
        }
    }
    steps
}

/// The last value a tick's applied changes gave a domain, of the kind
/// `pick` selects.
fn last_applied<T>(
    applied: &[crate::host::driver::AppliedChange],
    domid: u32,
    pick: impl Fn(Action) -> Option<T>,
) -> Option<T> {
    applied
        .iter()
        .rev()
        .filter(|a| a.change.domid == domid && a.error.is_none())
        .find_map(|a| pick(a.change.action))
}

/// The cap a tick's changes left a domain at, if they changed it.
fn applied_cap(applied: &[crate::host::driver::AppliedChange], domid: u32) -> Option<u32> {
    last_applied(applied, domid, |action| match action {
        Action::Cap { to, .. } => Some(to),
        _ => None,
    })
}

/// The memory target a tick's changes left a domain at, if they changed it.
fn applied_memory(applied: &[crate::host::driver::AppliedChange], domid: u32) -> Option<u64> {
    last_applied(applied, domid, |action| match action {
        Action::Memory { to, .. } => Some(to),
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
        EventKind::AgentStopped => host.stop_agent(&event.vm).map_err(fail)?,
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
