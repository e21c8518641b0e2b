//! Simulation scenarios: a simulated host, its guests and their workloads,
//! events over time, and the rex policy to run — all in xl cfg syntax.
//!
//! ```text
//! name = "paper-exp1"
//! seed = 2010
//! guest_pcpus = 1
//! host_memory = "1024M"
//! dom0_memory = "704M"
//! duration = 180            # seconds per repetition
//! measure_from = 20         # response times before this are warm-up
//! repetitions = 28
//! vms = [ "name=vm1,cap=20,memory=64M,maxmem=128M,clients=3,think_ms=1000,demand_ms=9.5" ]
//! events = [ "at=10,vm=vm1,clients=80" ]
//! # ...plus every key of a policy file (domains, decomposition, interval, ...)
//! ```
//!
//! VM keys besides those shown: `vcpus`, `weight`, `working_set` (memory
//! the application needs at full speed), `balloon_rate` (per second),
//! `kernel_offset` (what the guest's kernel keeps out of MemTotal: about
//! 48M for a Debian PV guest on Xen 4.17; default 0), `start=no`.
//! A guest that sees less than half its working set counts an OOM kill.
//!
//! Events: `clients=N`; `destroy`; `create` (of a VM declared with
//! `start=no`); `balloon=stuck|free`; `agent=stop` (the guest agent dies,
//! leaving its last figures in xenstore); `guest_free=`, `guest_total=`,
//! `guest_response=` (bytes the guest publishes, taken as written);
//! `level_cap=`/`level_memory=` (the domain's SLA changed at run time).

use std::path::Path;

use super::policy::{check_keys, number_in, parse_policy, size_kb, POLICY_KEYS};
use super::spec::Spec;
use super::ConfigError;
use crate::engine::limits::{CAP_LIMIT, WEIGHT_RANGE};
use crate::engine::{KiB, PolicyConfig};
use crate::host::sim::{SimConfig, SimVm};
use crate::xl::cfg::XluConfig;

/// The built-in scenario: the paper's Experiment 1.
pub const BUILTIN_NAME: &str = "paper-exp1";
const BUILTIN: &str = include_str!("../scenarios/paper-exp1.cfg");

/// The scenario suite (`rex simulate --suite`): every file of
/// `src/scenarios/`, built in so an installed rex carries it.
pub const SUITE: &[(&str, &str)] = &[
    ("paper-exp1", BUILTIN),
    ("flash-crowd", include_str!("../scenarios/flash-crowd.cfg")),
    ("diurnal", include_str!("../scenarios/diurnal.cfg")),
    ("overcommit", include_str!("../scenarios/overcommit.cfg")),
    (
        "memory-pressure",
        include_str!("../scenarios/memory-pressure.cfg"),
    ),
    ("churn", include_str!("../scenarios/churn.cfg")),
    ("slack-2x8", include_str!("../scenarios/slack-2x8.cfg")),
    ("scale-1000", include_str!("../scenarios/scale-1000.cfg")),
];

const SCENARIO_KEYS: &[&str] = &[
    "name",
    "seed",
    "guest_pcpus",
    "host_memory",
    "dom0_memory",
    "step_ms",
    "duration",
    "measure_from",
    "repetitions",
    "vms",
    "events",
];

const VM_KEYS: &[&str] = &[
    "name",
    "vcpus",
    "cap",
    "weight",
    "memory",
    "maxmem",
    "clients",
    "think_ms",
    "demand_ms",
    "working_set",
    "balloon_rate",
    "kernel_offset",
    "start",
];

const EVENT_KEYS: &[&str] = &[
    "at",
    "vm",
    "clients",
    "destroy",
    "create",
    "balloon",
    "agent",
    "guest_free",
    "guest_total",
    "guest_response",
    "level_cap",
    "level_memory",
];

/// What happens to a VM at an event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    Clients(u32),
    Destroy,
    Create,
    BalloonStuck(bool),
    /// The guest's agent dies; what it last published stays.
    AgentStopped,
    /// Raw bytes the guest publishes (None: keep the model's own value).
    GuestValues {
        free: Option<Vec<u8>>,
        total: Option<Vec<u8>>,
        response: Option<Vec<u8>>,
    },
    /// The SLA changed: a new guaranteed level.
    Level {
        cap: Option<u32>,
        mem_kb: Option<KiB>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at_ms: u64,
    pub vm: String,
    pub kind: EventKind,
    pub location: String,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub sim: SimConfig,
    /// VMs declared with `start=no`, created by a `create` event.
    pub later_vms: Vec<SimVm>,
    pub policy: PolicyConfig,
    pub duration_ms: u64,
    pub measure_from_ms: u64,
    pub repetitions: u32,
    /// Sorted by time.
    pub events: Vec<Event>,
}

impl Scenario {
    pub fn builtin() -> Self {
        Self::parse("<built-in paper-exp1>", BUILTIN).expect("the built-in scenario is valid")
    }

    /// Every scenario of the built-in suite, in order.
    pub fn suite() -> Vec<Self> {
        SUITE
            .iter()
            .map(|(name, text)| {
                Self::parse(&format!("<built-in {name}>"), text)
                    .unwrap_or_else(|e| panic!("built-in scenario {name}: {e}"))
            })
            .collect()
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = crate::input::read_text_file(path).map_err(crate::xl::cfg::CfgError)?;
        Self::parse(&path.display().to_string(), &text)
    }

    pub fn parse(filename: &str, text: &str) -> Result<Self, ConfigError> {
        let mut cfg = XluConfig::parse(filename, text)?;
        let known: Vec<&str> = SCENARIO_KEYS.iter().chain(POLICY_KEYS).copied().collect();
        check_keys(&cfg, &known)?;
        let policy = parse_policy(&mut cfg)?;

        let name = cfg
            .string("name")?
            .unwrap_or_else(|| file_stem(filename).to_string());
        let seed = number_in(&mut cfg, "seed", 0..=i64::MAX)?.unwrap_or(1) as u64;
        let guest_pcpus = number_in(&mut cfg, "guest_pcpus", 1..=4096)?.unwrap_or(1) as u32;
        let host_mem_kb = size_kb(&mut cfg, "host_memory")?.unwrap_or(4 << 20);
        let dom0_mem_kb = size_kb(&mut cfg, "dom0_memory")?.unwrap_or(1 << 20);
        if dom0_mem_kb >= host_mem_kb {
            return Err(ConfigError::new(
                cfg.location("dom0_memory"),
                "dom0_memory must be below host_memory",
            ));
        }
        let step_ms = number_in(&mut cfg, "step_ms", 1..=1000)?.unwrap_or(10) as u64;
        let duration_ms = number_in(&mut cfg, "duration", 1..=86_400)?.unwrap_or(120) as u64 * 1000;
        let measure_from_ms =
            number_in(&mut cfg, "measure_from", 0..=86_400)?.unwrap_or(0) as u64 * 1000;
        if measure_from_ms >= duration_ms {
            return Err(ConfigError::new(
                cfg.location("measure_from"),
                "measure_from must be before the end of the run (duration)",
            ));
        }
        let repetitions = number_in(&mut cfg, "repetitions", 1..=10_000)?.unwrap_or(1) as u32;

        let mut vms = Vec::new();
        let mut later_vms = Vec::new();
        let vm_texts = cfg.list("vms")?.unwrap_or_default();
        if vm_texts.is_empty() {
            return Err(ConfigError::new(
                cfg.location("vms"),
                "no `vms' in the scenario",
            ));
        }
        for (i, text) in vm_texts.iter().enumerate() {
            let spec = Spec::parse(cfg.list_item_location("vms", i), text, VM_KEYS)?;
            let (vm, starts) = parse_vm(&spec)?;
            if vms
                .iter()
                .chain(&later_vms)
                .any(|v: &SimVm| v.name == vm.name)
            {
                return Err(ConfigError::new(
                    spec.location,
                    format!("VM `{}' listed twice", vm.name),
                ));
            }
            if starts {
                vms.push(vm)
            } else {
                later_vms.push(vm)
            }
        }
        let is_vm = |name: &str| vms.iter().chain(&later_vms).any(|v| v.name == name);
        for (i, d) in policy.domains.iter().enumerate() {
            if !is_vm(&d.name) {
                return Err(ConfigError::new(
                    cfg.list_item_location("domains", i),
                    format!("unknown domain `{}': not among the scenario's vms", d.name),
                ));
            }
        }
        let mut events = Vec::new();
        for (i, text) in cfg.list("events")?.unwrap_or_default().iter().enumerate() {
            let spec = Spec::parse_with_flags(
                cfg.list_item_location("events", i),
                text,
                EVENT_KEYS,
                &["destroy", "create"],
            )?;
            let event = parse_event(&spec)?;
            if !is_vm(&event.vm) {
                return Err(ConfigError::new(
                    spec.location,
                    format!("unknown domain `{}' in event", event.vm),
                ));
            }
            events.push(event);
        }
        events.sort_by_key(|e| e.at_ms);

        Ok(Scenario {
            name,
            sim: SimConfig {
                seed,
                guest_pcpus,
                host_mem_kb,
                dom0_mem_kb,
                step_ms,
                vms,
            },
            later_vms,
            policy,
            duration_ms,
            measure_from_ms,
            repetitions,
            events,
        })
    }
}

fn file_stem(path: &str) -> &str {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.split('.').next().unwrap_or(base)
}

fn parse_vm(spec: &Spec) -> Result<(SimVm, bool), ConfigError> {
    let name = spec.required_str("name")?.to_string();
    let vcpus = spec.u32_in("vcpus", 1..=128)?.unwrap_or(1);
    let mem_kb = spec.size_kb("memory")?.unwrap_or(64 * 1024);
    let mem_max_kb = spec.size_kb("maxmem")?.unwrap_or(mem_kb);
    if mem_max_kb < mem_kb {
        return Err(ConfigError::new(&spec.location, "maxmem is below memory"));
    }
    let starts = match spec.str("start") {
        None | Some("yes") | Some("1") => true,
        Some("no") | Some("0") => false,
        Some(v) => {
            return Err(ConfigError::new(
                &spec.location,
                format!("`start={v}': use yes or no"),
            ))
        }
    };
    let vm = SimVm {
        name,
        vcpus,
        cap: spec.u32_in("cap", 0..=vcpus * 100)?.unwrap_or(0),
        weight: spec.u32_in("weight", WEIGHT_RANGE)?.unwrap_or(256),
        mem_kb,
        mem_max_kb,
        clients: spec.u32_in("clients", 0..=100_000)?.unwrap_or(0),
        think_ms: spec
            .f64_in("think_ms", 0.0..=3_600_000.0)?
            .unwrap_or(1000.0),
        demand_ms: spec
            .f64_in("demand_ms", 0.001..=3_600_000.0)?
            .unwrap_or(10.0),
        working_set_kb: spec.size_kb("working_set")?.unwrap_or(mem_kb * 3 / 4),
        balloon_rate_kb_s: spec.size_kb("balloon_rate")?.unwrap_or(16 * 1024),
        kernel_offset_kb: spec.size_kb("kernel_offset")?.unwrap_or(0),
    };
    if vm.kernel_offset_kb >= vm.mem_kb {
        return Err(ConfigError::new(
            &spec.location,
            "kernel_offset leaves the guest no memory",
        ));
    }
    Ok((vm, starts))
}

fn parse_event(spec: &Spec) -> Result<Event, ConfigError> {
    let at_s = spec
        .f64_in("at", 0.0..=86_400.0)?
        .ok_or_else(|| ConfigError::new(&spec.location, "`at=' (seconds) is required"))?;
    let vm = spec.required_str("vm")?.to_string();
    let bytes = |key: &str| spec.str(key).map(|s| s.as_bytes().to_vec());
    let mut kinds = Vec::new();
    if let Some(n) = spec.u32_in("clients", 0..=100_000)? {
        kinds.push(EventKind::Clients(n));
    }
    if spec.has_flag("destroy") {
        kinds.push(EventKind::Destroy);
    }
    if spec.has_flag("create") {
        kinds.push(EventKind::Create);
    }
    match spec.str("balloon") {
        None => {}
        Some("stuck") => kinds.push(EventKind::BalloonStuck(true)),
        Some("free") => kinds.push(EventKind::BalloonStuck(false)),
        Some(v) => {
            return Err(ConfigError::new(
                &spec.location,
                format!("`balloon={v}': use stuck or free"),
            ))
        }
    }
    match spec.str("agent") {
        None => {}
        Some("stop") => kinds.push(EventKind::AgentStopped),
        Some(v) => {
            return Err(ConfigError::new(
                &spec.location,
                format!("`agent={v}': use stop"),
            ))
        }
    }
    if spec.has("guest_free") || spec.has("guest_total") || spec.has("guest_response") {
        kinds.push(EventKind::GuestValues {
            free: bytes("guest_free"),
            total: bytes("guest_total"),
            response: bytes("guest_response"),
        });
    }
    if spec.has("level_cap") || spec.has("level_memory") {
        kinds.push(EventKind::Level {
            cap: spec.u32_in("level_cap", 1..=CAP_LIMIT)?,
            mem_kb: spec.size_kb("level_memory")?,
        });
    }
    let kind = match kinds.len() {
        1 => kinds.pop().expect("one"),
        0 => return Err(ConfigError::new(&spec.location, "event does nothing")),
        _ => return Err(ConfigError::new(&spec.location, "one action per event")),
    };
    Ok(Event {
        at_ms: (at_s * 1000.0).round() as u64,
        vm,
        kind,
        location: spec.location.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_is_the_papers_experiment() {
        let s = Scenario::builtin();
        assert_eq!(s.name, "paper-exp1");
        assert_eq!(s.sim.guest_pcpus, 1);
        assert_eq!(s.sim.vms.len(), 4);
        assert!(s
            .sim
            .vms
            .iter()
            .all(|v| v.cap == 20 && v.mem_kb == 64 * 1024));
        assert_eq!(s.repetitions, 28);
        assert_eq!(s.policy.domain("vm2").unwrap().sla_ms, Some(900.0));
        assert_eq!(s.events[0].kind, EventKind::Clients(80));
        // 20% of the pCPU and 64 MB are left unallocated at start.
        let caps: u32 = s.sim.vms.iter().map(|v| v.cap).sum();
        assert_eq!(caps, 80);
        let mem: u64 = s.sim.vms.iter().map(|v| v.mem_kb).sum();
        assert_eq!(s.sim.host_mem_kb - s.sim.dom0_mem_kb - mem, 64 * 1024);
    }

    fn err(text: &str) -> ConfigError {
        Scenario::parse("s.cfg", text).unwrap_err()
    }

    #[test]
    fn errors_name_file_line() {
        let e = err("vms = [ \"name=a\" ]\nevents = [ \"at=1,vm=b,clients=3\" ]\n");
        assert_eq!(e.location, "s.cfg:2");
        assert!(e.message.contains("unknown domain `b'"), "{e}");

        let e = err("vms = [ \"name=a\" ]\ndomains = [ \"name=zz\" ]\n");
        assert_eq!(e.location, "s.cfg:2");
        assert!(e.message.contains("unknown domain `zz'"), "{e}");

        let e = err("vms = [ \"name=a\",\n \"name=b,cap=500\" ]\n");
        assert_eq!(e.location, "s.cfg:2");

        let e = err("vms = [ \"name=a\" ]\nevents = [ \"at=1,vm=a,clients=3,destroy\" ]\n");
        assert!(e.message.contains("one action"), "{e}");

        let e = err("vms = [ \"name=a\" ]\nrepetitons = 3\n");
        assert!(e.message.contains("unknown key `repetitons'"), "{e}");
    }

    #[test]
    fn garbage_bytes_are_kept_verbatim() {
        let s = Scenario::parse(
            "s.cfg",
            "vms = [ \"name=a\" ]\nevents = [ \"at=1.5,vm=a,guest_response=1e999\" ]\n",
        )
        .unwrap();
        assert_eq!(s.events[0].at_ms, 1500);
        assert_eq!(
            s.events[0].kind,
            EventKind::GuestValues {
                free: None,
                total: None,
                response: Some(b"1e999".to_vec())
            }
        );
    }
}
