//! The deterministic simulated host: a Xen host in discrete time, with no
//! Xen needed.
//!
//! Model, per step of `step_ms` (default 10 ms):
//! 1. domains destroyed before the step disappear and free their memory;
//! 2. each balloon moves towards its target at its rate ([`balloon`]);
//! 3. clients whose think time has ended send requests ([`workload`]);
//!    a request needs `demand_ms × slowdown` of CPU, where
//!    `slowdown = 1 + MEMORY_SLOWDOWN × shortfall / working_set` and
//!    `shortfall = max(0, working_set − mem_current)`: a guest short of
//!    memory pages, and every request pays for it;
//! 4. the guest pCPUs are shared by the credit scheduler's rule
//!    ([`scheduler`]): by weight among VMs with work, each limited by its
//!    cap, its vCPUs and the work it has;
//! 5. each VM serves its requests by processor sharing with the CPU it got;
//!    that CPU is added to the domain's `cpu_time_ns`.
//!
//! Memory is Xen's model: a domain's own maximum (libxl dominfo
//! `max_memkb`) is its target + 1 MiB, moved by every target change, and
//! the admin's maxmem is only in its xenstore `memory/static-max`, from
//! which the ceiling is reported with the libxl backend's rule; a guest's
//! kernel sees `kernel_offset` less than its balloon.
//!
//! Arrivals are admitted at step boundaries, so response times are
//! pessimistic by up to one step. Every random draw comes from the in-crate
//! PRNG seeded from the config seed, the VM's name and its domid.

mod balloon;
mod config;
mod host_impl;
mod rng;
mod scheduler;
#[cfg(test)]
mod tests;
mod workload;

use std::sync::Arc;

use self::balloon::Balloon;
use self::rng::{fnv1a, splitmix64, Rng};
use self::scheduler::{water_fill, Claim};
use self::workload::{Completion, Workload};
use super::HostError;
use crate::engine::{DomId, DomainInfo, DomainState, KiB, SchedParams};
use crate::host::guest;

pub use self::config::{SimConfig, SimError, SimVm};

/// How much a memory shortfall slows requests: at half the working set, a
/// request needs 1 + 4 × 0.5 = 3 times its CPU.
pub const MEMORY_SLOWDOWN: f64 = 4.0;

/// Name of the control domain, as Xen reports it.
pub const DOM0_NAME: &str = "Domain-0";

const NS_PER_MS: u64 = 1_000_000;

/// One completed request's response time.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseSample {
    pub vm: String,
    pub at_ns: u64,
    pub response_ms: f64,
}

/// A domain's memory figures, kB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimMemory {
    pub current_kb: KiB,
    pub target_kb: KiB,
    /// The balloon's ceiling (static-max, the domain's maxmem).
    pub max_kb: KiB,
    /// Xen's own maximum: target + 1 MiB after every target change.
    pub xen_max_kb: KiB,
}

/// What libxl adds to a target for Xen's per-domain maximum
/// (`LIBXL_MAXMEM_CONSTANT`), kB.
pub const XEN_MAX_SLACK_KB: KiB = 1024;

/// How often the engine changed something, for tests and reports. Every
/// call is counted, accepted or not; `rejected` counts the refused ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimCounters {
    pub set_sched: u64,
    pub set_memory: u64,
    pub rejected: u64,
}

#[derive(Debug)]
struct Domain {
    domid: DomId,
    name: Arc<str>,
    uuid: [u8; 16],
    vcpus: u32,
    sched: SchedParams,
    balloon: Balloon,
    /// Xen's per-domain maximum (libxl dominfo `max_memkb`): the target
    /// plus 1 MiB, moved by every target change (libxl's enforced
    /// set_memory_target), as on real Xen.
    xen_max_kb: KiB,
    /// xenstore `memory/static-max` as the toolstack wrote it (the
    /// balloon's ceiling, `maxmem`); tests may remove or garble it.
    static_max: Option<Vec<u8>>,
    working_set_kb: KiB,
    /// What the kernel keeps out of MemTotal.
    kernel_offset_kb: KiB,
    /// Times the guest ran out of memory (its OOM killer fired), and
    /// whether it is out of memory now (one kill per episode).
    oom_kills: u32,
    out_of_memory: bool,
    /// CPU given so far, ns (fractional, reported rounded down).
    cpu_time_ns: f64,
    state: DomainState,
    /// None for dom0, which runs no workload.
    workload: Option<Workload>,
    /// Values written in place of the model's own (by hand: no counter;
    /// by a dead agent: its last ones).
    guest_override: Option<guest::Published>,
    /// What rex's guest-value owner makes of the agent's counter.
    heartbeat: guest::Heartbeat,
}

impl Domain {
    fn slowdown(&self) -> f64 {
        if self.working_set_kb == 0 {
            return 1.0;
        }
        let shortfall = self.working_set_kb.saturating_sub(self.mem_total_kb());
        1.0 + MEMORY_SLOWDOWN * shortfall as f64 / self.working_set_kb as f64
    }

    /// The memory the guest's kernel sees (its MemTotal).
    fn mem_total_kb(&self) -> KiB {
        self.balloon
            .current_kb
            .saturating_sub(self.kernel_offset_kb)
    }

    /// Counts an OOM kill when the guest sees less than half its working
    /// set: it can page out the rest of a shortfall (and slows down for
    /// it, see [`Domain::slowdown`]), not more.
    fn check_memory(&mut self) {
        if self.workload.is_none() || self.working_set_kb == 0 {
            return;
        }
        let out = self.mem_total_kb() * 2 < self.working_set_kb;
        if out && !self.out_of_memory {
            self.oom_kills += 1;
        }
        self.out_of_memory = out;
    }

    /// The ceiling rex's backends report: static-max, else Xen's maximum
    /// (the libxl backend's own rule, shared).
    fn ceiling_kb(&self, host_total_kb: KiB) -> KiB {
        guest::memory_ceiling_kb(self.static_max.as_deref(), self.xen_max_kb, host_total_kb)
    }

    fn info(&self, host_total_kb: KiB) -> DomainInfo {
        DomainInfo {
            domid: self.domid,
            name: self.name.to_string(),
            uuid: self.uuid,
            vcpus_online: self.vcpus,
            cpu_time_ns: self.cpu_time_ns as u64,
            mem_current_kb: self.balloon.current_kb,
            mem_target_kb: self.balloon.target_kb,
            mem_max_kb: self.ceiling_kb(host_total_kb),
            state: self.state,
        }
    }
}

/// The simulated host. Construct with [`SimHost::new`], drive time with
/// [`SimHost::advance`], and use it through [`Host`] like any backend.
#[derive(Debug)]
pub struct SimHost {
    seed: u64,
    guest_pcpus: u32,
    host_mem_kb: KiB,
    step_ns: u64,
    now_ns: u64,
    /// Start of the next step the model has not yet run.
    model_ns: u64,
    /// Ordered by domid; dom0 first.
    domains: Vec<Domain>,
    next_domid: DomId,
    samples: Vec<(Arc<str>, Completion)>,
    counters: SimCounters,
    // Per-step scratch, kept to avoid allocating every step.
    claims: Vec<Claim>,
    /// Per domain: (CPU wanted, CPU it could run at) this step, ms.
    wants: Vec<(f64, f64)>,
    grants: Vec<f64>,
    fixed: Vec<bool>,
    completions: Vec<Completion>,
}

impl SimHost {
    /// Builds the host at time 0 with dom0 and every VM of `config`
    /// (domids 1, 2, … in order).
    pub fn new(config: SimConfig) -> Result<Self, SimError> {
        config::check_host(&config)?;
        let dom0 = Domain {
            domid: 0,
            name: Arc::from(DOM0_NAME),
            uuid: derive_uuid(DOM0_NAME, 0),
            vcpus: 1,
            sched: SchedParams {
                weight: 256,
                cap: 0,
            },
            balloon: Balloon::new(config.dom0_mem_kb, config.dom0_mem_kb, 0),
            xen_max_kb: config.dom0_mem_kb + XEN_MAX_SLACK_KB,
            static_max: Some(config.dom0_mem_kb.to_string().into_bytes()),
            working_set_kb: 0,
            kernel_offset_kb: 0,
            oom_kills: 0,
            out_of_memory: false,
            cpu_time_ns: 0.0,
            state: DomainState::Running,
            workload: None,
            guest_override: None,
            heartbeat: guest::Heartbeat::default(),
        };
        let mut host = Self {
            seed: config.seed,
            guest_pcpus: config.guest_pcpus,
            host_mem_kb: config.host_mem_kb,
            step_ns: config.step_ms * NS_PER_MS,
            now_ns: 0,
            model_ns: 0,
            domains: vec![dom0],
            next_domid: 1,
            samples: Vec::new(),
            counters: SimCounters::default(),
            claims: Vec::new(),
            wants: Vec::new(),
            grants: Vec::new(),
            fixed: Vec::new(),
            completions: Vec::new(),
        };
        for vm in config.vms {
            host.create_domain(vm)?;
        }
        Ok(host)
    }

    /// Starts a VM now with the next unused domid.
    pub fn create_domain(&mut self, vm: SimVm) -> Result<DomId, SimError> {
        let domid = self.next_domid;
        self.create_domain_with_domid(vm, domid)
    }

    /// Starts a VM with a chosen domid, which may be one a destroyed domain
    /// had (Xen reuses domids only after wrapping; tests need it sooner).
    pub fn create_domain_with_domid(&mut self, vm: SimVm, domid: DomId) -> Result<DomId, SimError> {
        config::check_vm(&vm)?;
        if self.by_domid(domid).is_some() {
            return Err(SimError::DomIdInUse(domid));
        }
        if self.domains.iter().any(|d| *d.name == *vm.name) {
            return Err(SimError::DuplicateName(vm.name));
        }
        let free_kb = self.free_mem_kb();
        if vm.mem_kb > free_kb {
            return Err(SimError::OutOfMemory {
                name: vm.name,
                need_kb: vm.mem_kb,
                free_kb,
            });
        }
        let mut stream = self.seed ^ fnv1a(vm.name.as_bytes()) ^ u64::from(domid).rotate_left(32);
        let rng = Rng::new(splitmix64(&mut stream));
        let domain = Domain {
            domid,
            uuid: derive_uuid(&vm.name, domid),
            vcpus: vm.vcpus,
            sched: SchedParams {
                weight: vm.weight,
                cap: vm.cap,
            },
            balloon: Balloon::new(vm.mem_kb, vm.mem_max_kb, vm.balloon_rate_kb_s),
            xen_max_kb: vm.mem_kb + XEN_MAX_SLACK_KB,
            static_max: Some(vm.mem_max_kb.to_string().into_bytes()),
            working_set_kb: vm.working_set_kb,
            kernel_offset_kb: vm.kernel_offset_kb,
            oom_kills: 0,
            out_of_memory: false,
            cpu_time_ns: 0.0,
            state: DomainState::Blocked,
            workload: Some(Workload::new(
                vm.clients,
                vm.think_ms,
                vm.demand_ms,
                rng,
                self.now_ns,
            )),
            guest_override: None,
            heartbeat: guest::Heartbeat::default(),
            name: Arc::from(vm.name),
        };
        let at = self.domains.partition_point(|d| d.domid < domid);
        self.domains.insert(at, domain);
        self.next_domid = self.next_domid.max(domid.saturating_add(1));
        Ok(domid)
    }

    /// Destroys a VM: it is listed as Dying until the next step, then gone
    /// and its memory returned to the host.
    pub fn destroy_domain(&mut self, name: &str) -> Result<(), SimError> {
        let domain = self.live_vm_mut(name)?;
        domain.state = DomainState::Dying;
        domain.workload = None;
        Ok(())
    }

    /// Changes the number of closed-loop clients of a VM from now on.
    pub fn set_clients(&mut self, name: &str, clients: u32) -> Result<(), SimError> {
        let now = self.now_ns;
        let domain = self.live_vm_mut(name)?;
        if let Some(workload) = domain.workload.as_mut() {
            workload.set_clients(clients, now);
        }
        Ok(())
    }

    /// Freezes (or releases) a VM's balloon: its memory stops following the target.
    pub fn set_balloon_stuck(&mut self, name: &str, stuck: bool) -> Result<(), SimError> {
        self.live_vm_mut(name)?.balloon.stuck = stuck;
        Ok(())
    }

    /// Makes the guest publish these bytes (None = key absent) instead of
    /// its own figures, until [`SimHost::clear_guest_values`].
    pub fn set_guest_values(
        &mut self,
        name: &str,
        free: Option<Vec<u8>>,
        total: Option<Vec<u8>>,
        response: Option<Vec<u8>>,
    ) -> Result<(), SimError> {
        self.live_vm_mut(name)?.guest_override = Some(guest::Published {
            free,
            total,
            response,
            ..guest::Published::default()
        });
        Ok(())
    }

    /// The guest's agent dies: what it last published stays in xenstore,
    /// counter included, until [`SimHost::clear_guest_values`].
    pub fn stop_agent(&mut self, name: &str) -> Result<(), SimError> {
        let now_ns = self.now_ns;
        let domain = self.live_vm_mut(name)?;
        domain.guest_override = Some(Self::published(domain, now_ns));
        Ok(())
    }

    /// Lets the guest publish its own figures again.
    pub fn clear_guest_values(&mut self, name: &str) -> Result<(), SimError> {
        self.live_vm_mut(name)?.guest_override = None;
        Ok(())
    }

    /// Runs the model for `dt_ns` more nanoseconds.
    pub fn advance(&mut self, dt_ns: u64) {
        self.advance_to(self.now_ns.saturating_add(dt_ns));
    }

    /// Runs the model up to `t_ns` (whole steps; the clock reads `t_ns`).
    /// A time in the past is ignored: simulated time never goes back.
    pub fn advance_to(&mut self, t_ns: u64) {
        while self.model_ns + self.step_ns <= t_ns {
            self.step(self.model_ns);
            self.model_ns += self.step_ns;
        }
        self.now_ns = self.now_ns.max(t_ns);
    }

    /// Every response time recorded since the last call, in completion order.
    pub fn take_samples(&mut self) -> Vec<ResponseSample> {
        self.samples
            .drain(..)
            .map(|(vm, c)| ResponseSample {
                vm: vm.to_string(),
                at_ns: c.at_ns,
                response_ms: c.response_ms,
            })
            .collect()
    }

    pub fn counters(&self) -> SimCounters {
        self.counters
    }

    /// How many times `name`'s guest ran out of memory (0 if unknown).
    pub fn oom_kills(&self, name: &str) -> u32 {
        self.by_name(name).map_or(0, |d| d.oom_kills)
    }

    pub fn domid(&self, name: &str) -> Option<DomId> {
        self.by_name(name).map(|d| d.domid)
    }

    pub fn sched(&self, name: &str) -> Option<SchedParams> {
        self.by_name(name).map(|d| d.sched)
    }

    pub fn mem(&self, name: &str) -> Option<SimMemory> {
        self.by_name(name).map(|d| SimMemory {
            current_kb: d.balloon.current_kb,
            target_kb: d.balloon.target_kb,
            max_kb: d.balloon.max_kb,
            xen_max_kb: d.xen_max_kb,
        })
    }

    /// A domain as [`Host::list_domains`] would report it.
    pub fn domain(&self, name: &str) -> Option<DomainInfo> {
        self.by_name(name).map(|d| d.info(self.host_mem_kb))
    }

    /// Replaces (or, with None, removes) a domain's xenstore
    /// `memory/static-max`, as a broken toolstack or a test might.
    pub fn set_static_max(&mut self, name: &str, value: Option<&[u8]>) -> Result<(), SimError> {
        let domain = self.live_vm_mut(name)?;
        domain.static_max = value.map(<[u8]>::to_vec);
        Ok(())
    }

    /// Clients in a VM's loop and requests it is serving now.
    pub fn load(&self, name: &str) -> Option<(u32, usize)> {
        let workload = self.by_name(name)?.workload.as_ref()?;
        Some((workload.clients(), workload.outstanding()))
    }

    fn by_name(&self, name: &str) -> Option<&Domain> {
        self.domains.iter().find(|d| *d.name == *name)
    }

    fn live_vm_mut(&mut self, name: &str) -> Result<&mut Domain, SimError> {
        self.domains
            .iter_mut()
            .find(|d| *d.name == *name && d.domid != 0 && d.state.is_alive())
            .ok_or_else(|| SimError::UnknownVm(name.to_owned()))
    }

    fn live_by_domid(&mut self, domid: DomId) -> Result<&mut Domain, HostError> {
        self.by_domid_mut(domid)
            .filter(|d| d.state.is_alive())
            .ok_or(HostError::NoSuchDomain(domid))
    }

    /// The domains are kept in domid order (see `create_domain_with_domid`),
    /// so a domid is found in O(log n), as a hypercall finds it in O(1): a
    /// tick's per-domain reads must not cost the simulator O(n) each.
    fn by_domid(&self, domid: DomId) -> Option<&Domain> {
        let at = self
            .domains
            .binary_search_by_key(&domid, |d| d.domid)
            .ok()?;
        Some(&self.domains[at])
    }

    fn by_domid_mut(&mut self, domid: DomId) -> Option<&mut Domain> {
        let at = self
            .domains
            .binary_search_by_key(&domid, |d| d.domid)
            .ok()?;
        Some(&mut self.domains[at])
    }

    fn free_mem_kb(&self) -> KiB {
        let used: KiB = self.domains.iter().map(|d| d.balloon.current_kb).sum();
        self.host_mem_kb.saturating_sub(used)
    }

    /// One model step starting at `start_ns` (see the module comment).
    fn step(&mut self, start_ns: u64) {
        self.domains.retain(|d| d.state != DomainState::Dying);

        let step_ms = self.step_ns / NS_PER_MS;
        let mut free_kb = self.free_mem_kb();
        for domain in &mut self.domains {
            let moved = domain.balloon.step(step_ms, free_kb);
            free_kb = free_kb.saturating_add_signed(-moved);
            domain.check_memory();
        }

        let step_ms = self.step_ns as f64 / NS_PER_MS as f64;
        let capacity_ms = f64::from(self.guest_pcpus) * step_ms;
        self.claims.clear();
        self.wants.clear();
        for domain in &mut self.domains {
            let slowdown = domain.slowdown();
            let (limit_ms, speed_ms) = match domain.workload.as_mut() {
                Some(workload) => {
                    workload.admit(start_ns, slowdown);
                    let (cap, vcpus) = (domain.sched.cap, domain.vcpus);
                    let wanted = workload.wanted_ms(vcpus, step_ms);
                    let parallel = workload.parallel_ms(vcpus, step_ms);
                    (
                        scheduler::limit_ms(cap, vcpus, wanted, step_ms),
                        scheduler::limit_ms(cap, vcpus, parallel, step_ms).min(capacity_ms),
                    )
                }
                None => (0.0, 0.0), // dom0 runs on its own pCPU
            };
            self.wants.push((limit_ms, speed_ms));
            self.claims.push(Claim {
                weight: domain.sched.weight,
                limit_ms,
            });
        }
        let n = self.claims.len();
        self.grants.resize(n, 0.0);
        self.fixed.resize(n, false);
        water_fill(capacity_ms, &self.claims, &mut self.grants, &mut self.fixed);

        let end_ns = start_ns + self.step_ns;
        let shares = self.grants.iter().zip(&self.wants);
        for (domain, (&given_ms, &(limit_ms, speed_ms))) in self.domains.iter_mut().zip(shares) {
            let Some(workload) = domain.workload.as_mut() else {
                continue;
            };
            // A VM given all it wanted ran at up to its full speed and
            // finished early in the step; otherwise it ran at its grant.
            let speed_ms = if given_ms >= limit_ms {
                speed_ms
            } else {
                given_ms
            };
            self.completions.clear();
            let used_ms = workload.serve(
                start_ns,
                self.step_ns,
                given_ms,
                speed_ms,
                domain.vcpus,
                &mut self.completions,
            );
            domain.cpu_time_ns += used_ms * NS_PER_MS as f64;
            domain.state = if workload.outstanding() > 0 || used_ms > 0.0 {
                DomainState::Running
            } else {
                DomainState::Blocked
            };
            workload.prune_recent(end_ns);
            for &done in &self.completions {
                self.samples.push((Arc::clone(&domain.name), done));
            }
        }
    }
}

/// A stable uuid from name and domid (RFC 9562 version 8, "custom").
fn derive_uuid(name: &str, domid: DomId) -> [u8; 16] {
    let mut state = fnv1a(name.as_bytes()) ^ u64::from(domid);
    let mut uuid = [0u8; 16];
    uuid[..8].copy_from_slice(&splitmix64(&mut state).to_be_bytes());
    uuid[8..].copy_from_slice(&splitmix64(&mut state).to_be_bytes());
    uuid[6] = (uuid[6] & 0x0f) | 0x80;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    uuid
}
