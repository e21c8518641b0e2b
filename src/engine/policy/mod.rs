//! Policy: usage + SLA model + host capacity → a plan, by rex's SLA-first
//! control law.
//!
//! Each managed domain (an alive domain whose name has a [`DomainPolicy`])
//! is guaranteed its SLA level and kept within its ceiling. Above that, CPU
//! goes first to the domains that miss their SLA, and never leaves an SLA
//! worse off than the starting allocation would.
//!
//! **Classes.** Every tick each domain with a CPU sample falls in one class,
//! served in this order (by priority, highest first, within a class). Use
//! is the larger of the smoothed and the last interval's, so a load step
//! counts at once and a domain is idle only when both say so.
//! 1. *missing*: an SLA domain whose guest reports a response time above
//!    its SLA while it uses more than `idle` of its cap (the figure is
//!    untrusted: an idle domain cannot be helped by CPU, and a guest that
//!    merely writes a big number gains nothing); furthest off first;
//! 2. *near*: an SLA domain within its SLA but above the aim
//!    (`sla_target`, 85% of the SLA by default) for two ticks in a row
//!    while it uses its CPU (not held back by the cooldown: a give-back
//!    that proved too much is undone at once); or a saturated one whose
//!    seconds at its present cap spread so wide that one may land above
//!    the SLA although their mean is within the aim (the mean of the last
//!    responses at this cap plus two standard deviations, from four on):
//!    an SLA is judged second by second, so such a domain gets a deadband
//!    more and gives nothing back at that cap;
//! 3. *approaching*: a saturated SLA domain at or below its aim but above
//!    the line below which it would give back (85% of the aim): a rising
//!    load, seen before it misses;
//! 4. *saturated*: a domain using ≥ `saturation` of its cap with no SLA
//!    figure to go by (no SLA, or no response reported);
//! 5. *comfortable*: a saturated SLA domain well within its aim. Enough,
//!    not more: it grows only from the pool (and the headroom idle domains
//!    hold of it);
//! 6. *headroom*: any other SLA domain gets what is left of the pool, held
//!    against its next load step (`headroom = 0` leaves the pool
//!    unallocated). Whatever an idle SLA domain holds above its guarantee
//!    counts as headroom: idle SLA domains even it out among themselves
//!    (halving the difference), and whoever wants CPU takes it from idle
//!    holders first.
//!
//! Near, approaching, saturated and comfortable domains take from the pool
//! and from headroom; near and saturated ones also from what idle
//! best-effort domains do not use; near ones from busy best-effort domains
//! too, and approaching ones gradually (a quarter step a tick): SLA domains
//! are served first, and need not wait for a miss. Steps are proportional to the error
//! (the cap times how far the response is above the aim), within
//! [`deadband_cap`, `max_step_cap`].
//!
//! **Preemption.** A missing domain takes up to `max_step_cap` a tick, in
//! this order: the unallocated pool; headroom; idle domains above their
//! guarantee (each keeps what it uses) and SLA domains well inside their
//! SLA (at most half the aim); busy domains without an SLA, down to their
//! guarantee; SLA domains of lower priority at or below their aim,
//! gradually (a quarter step a tick). Within a tier the donor with the most
//! room gives first. What it takes from others is proportional to its error
//! (more the longer the miss lasts), and while its last raise is still
//! working (raised at the last tick, or its response fell by a tenth) only
//! headroom and busy best-effort domains give. Each change names both
//! sides: "SLA missed: 1554 ms > 900 ms; taken from batch" and "preempted:
//! given to vm2". A domain that has missed for more than two intervals and
//! could grow leaves no best-effort domain above its guarantee, and while
//! anyone misses, only missing domains grow.
//!
//! **Reclaim on demand.** Nothing is shrunk because it is idle: a domain
//! loses CPU only when another domain wants it, since a light domain's
//! latency depends on its cap even when its average use is low.
//!
//! **Loans.** What preemption took (other than headroom) is lent. An SLA
//! domain whose response has stayed at most 85% of its aim for longer than
//! the cooldown gives it back to the lenders that are idle (a busy lender
//! claims for itself; an idle SLA lender is owed nothing, since what it
//! holds above its guarantee is headroom anyone may take), down to the cap
//! it is estimated to keep its aim with, and never below a cap that proved
//! not enough since it was last idle: a tenth above one at which it missed
//! its SLA (or, for a miss at a cap held for a while, the cap the 1/√cap
//! estimate says it needed), a deadband above one at which it was near it
//! or its seconds spread above the SLA. A response above the aim right
//! after a raise, and falling, is the backlog of the lower cap draining: it
//! counts against that cap, not the new one. Within sight of
//! the aim (a response above half of it) it gives back a deadband at a
//! time, and after any change it waits a cooldown to see its effect. Bad
//! news counts at once, good news must last.
//!
//! **Bounds first**, at once, whatever the cooldown, step or deadband: an
//! uncapped domain, or one below its guarantee, is set to its guarantee;
//! one above `cap_max`/`mem_max` is lowered to it; a new level
//! ([`Policy::set_level`]) is applied as it is; and if the caps add up to
//! more than the pool, domains above their guarantee give back, those
//! without an SLA first, then least priority and least busy.
//!
//! **Memory** moves from guests with spare memory to guests short of it
//! (free below `mem_pressure` percent of MemTotal or below
//! `mem_pressure_min`), guarantees first, then by priority, never letting
//! the host's free memory fall below the slush plus `reserve_memory`
//! (`memory.rs`). Balloon targets are in allocation, guests report in
//! MemTotal terms: what a guest's kernel keeps out of MemTotal (its target
//! less its MemTotal) is added to what it needs. A donor keeps what it uses
//! with twice both thresholds free; a guest under pressure grows by what
//! it needs to get there, at most `max_step_memory` a tick. As for CPU,
//! memory is reclaimed on demand: a guest's spare memory stays with it
//! until a grow cannot be served from free memory or the host's free
//! memory falls below the slush and reserve; then the most spare guests
//! give what is wanted. A domain missing its SLA that is still short takes
//! from best-effort domains above their guarantee, but never below what
//! they use.
//!
//! A load-driven change against the last one waits `cooldown_ticks`
//! (`trend.rs`). The classes live in `classes.rs`, CPU in `cpu.rs`, the
//! baselines kept for comparison (`rex simulate --policy`) in
//! `baseline.rs`, and the checks of a configuration in `validate.rs`.

mod balloon;
mod baseline;
mod classes;
mod cpu;
mod memory;
mod order;
mod spread;
mod trend;
mod urgency;
mod validate;

pub use validate::{domain_problems, host_problems};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::model::{Action, Change, DomId, HostInfo, KiB, Plan, Reason, Shortfall};
use super::monitor::Usage;
use super::sla::{DomainPolicy, HostPolicy, Level, PolicyConfig};
use crate::engine::limits::WEIGHT_RANGE;
use balloon::{BalloonWatch, FlagChange};
use memory::UseTrend;
use spread::Spread;
use trend::Trend;
pub use urgency::Urgency;

/// Which control law decides: rex's own, or a baseline kept only to
/// compare against (`rex simulate --policy`, `--compare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Law {
    /// rex's SLA-first law (the daemon's only law).
    #[default]
    Rex,
    /// The starting allocation, never changed.
    Static,
    /// SRX-style thresholds on use of the cap, fixed steps.
    Threshold,
    /// The pool shared in proportion to weight × demand; memory
    /// squeezed-style.
    Proportional,
}

impl Law {
    /// Every law, rex's first.
    pub const ALL: [Law; 4] = [Law::Rex, Law::Static, Law::Threshold, Law::Proportional];

    pub fn name(self) -> &'static str {
        match self {
            Law::Rex => "rex",
            Law::Static => "static",
            Law::Threshold => "threshold",
            Law::Proportional => "proportional",
        }
    }

    pub fn from_name(name: &str) -> Option<Law> {
        Self::ALL.into_iter().find(|law| law.name() == name)
    }

    fn control(self) -> &'static dyn ControlLaw {
        match self {
            Law::Rex => &RexLaw,
            Law::Static => &baseline::Static,
            Law::Threshold => &baseline::Threshold,
            Law::Proportional => &baseline::Proportional,
        }
    }
}

/// What every control law decides, given the managed domains of one tick.
trait ControlLaw: std::fmt::Debug + Sync {
    /// Decides the slots' caps within `pool`. Returns false when the
    /// guarantees alone exceed it.
    fn cpu(&self, policy: &HostPolicy, pool: u64, slots: &mut [Slot], tick: u64) -> bool;
    /// Decides the slots' balloon targets; growth within `free_mem_kb`
    /// above the slush.
    fn memory(&self, policy: &HostPolicy, free_mem_kb: KiB, slots: &mut [Slot], tick: u64);
}

/// rex's own law (`cpu.rs`, `memory.rs`).
#[derive(Debug)]
struct RexLaw;

impl ControlLaw for RexLaw {
    fn cpu(&self, policy: &HostPolicy, pool: u64, slots: &mut [Slot], tick: u64) -> bool {
        cpu::plan(policy, pool, slots, tick)
    }

    fn memory(&self, policy: &HostPolicy, free_mem_kb: KiB, slots: &mut [Slot], tick: u64) {
        memory::plan(policy, free_mem_kb, slots, tick)
    }
}

/// A policy that cannot be applied on this host: every problem found.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyError {
    pub misfits: Vec<Misfit>,
}

/// One reason a policy cannot be applied, and what in the policy it is
/// about (so a policy file can name the line).
#[derive(Debug, Clone, PartialEq)]
pub struct Misfit {
    pub about: Culprit,
    pub message: String,
}

/// The part of a policy a [`Misfit`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Culprit {
    /// A host-wide key (`dom0_cpu`, `slush`, …).
    Key(String),
    /// One domain's entry.
    Domain(String),
    /// The domains together (their sum exceeds the host).
    Domains,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, misfit) in self.misfits.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&misfit.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

/// What the policy remembers of a managed domain between ticks: its slot's
/// state, updated in place during a tick (a slot borrows it rather than
/// copying it in and out).
#[derive(Debug, Clone)]
pub(super) struct Carried {
    domid: DomId,
    name: Arc<str>,
    /// Its policy's index in the configuration, valid until the next
    /// [`Policy::set_config`]: a steady domain is matched by the domid merge
    /// alone, without hashing its name each tick.
    policy_index: Option<usize>,
    pub cap_trend: Trend,
    pub mem_trend: Trend,
    /// Ticks in a row the domain has been missing its SLA.
    pub missed_ticks: u32,
    /// The response its guest reported at the last tick.
    pub last_response_ms: Option<f64>,
    /// Its recent responses at its present cap (how far a second may land).
    pub spread: Spread,
    /// Ticks in a row its response has been clearly within its aim (what
    /// giving back waits for: bad news counts at once, good news must last).
    pub within_ticks: u32,
    /// Cap points taken from this domain by preemption, not yet given back.
    pub lent: u32,
    /// The cap it never gives back below until it is next idle: above the
    /// highest cap at which it was seen answering above its aim (a tenth
    /// above one where it missed its SLA, a deadband above one where it was
    /// only near it).
    pub give_back_floor: u32,
    /// Cap points of the pool this domain holds as headroom.
    pub headroom: u32,
    /// Whether its balloon follows its target.
    pub balloon: BalloonWatch,
    /// How its guest's memory use has moved (a rising one is not shrunk).
    pub use_trend: UseTrend,
}

impl Carried {
    fn new(domid: DomId, name: Arc<str>) -> Self {
        Self {
            domid,
            name,
            policy_index: None,
            cap_trend: Trend::default(),
            mem_trend: Trend::default(),
            missed_ticks: 0,
            last_response_ms: None,
            spread: Spread::default(),
            within_ticks: 0,
            lent: 0,
            give_back_floor: 0,
            headroom: 0,
            balloon: BalloonWatch::default(),
            use_trend: UseTrend::default(),
        }
    }
}

/// The decision maker; keeps per-domain cooldowns between ticks.
#[derive(Debug)]
pub struct Policy {
    config: PolicyConfig,
    /// Index of each domain's policy in `config.domains`, by name; built
    /// once per configuration so a tick never scans the configuration.
    by_name: HashMap<String, usize>,
    /// Domains whose level changed at run time, applied at the next tick.
    sla_changed: HashSet<String>,
    /// Managed domains of the last tick, sorted by domid: a tick merges
    /// them with the (sorted) usage, with no hashing.
    remembered: Vec<Carried>,
    /// Uncapped unmanaged guests already warned about, with the tick they
    /// were last seen (so a domain that comes back is warned about again).
    warned_uncapped: HashMap<DomId, u64>,
    /// Managed domains whose policy asks more than they can take, already
    /// warned about, with the tick they were last seen so.
    warned_misfit: HashMap<DomId, u64>,
    /// Whether the last tick found the guarantees larger than the pool.
    over_committed: bool,
    tick: u64,
    law: Law,
    /// The last tick's lists, emptied: the next tick builds its own in
    /// their memory (at 10,000 domains, megabytes a tick that the allocator
    /// may otherwise hand back to the kernel and fault in again).
    scratch: Scratch,
}

/// Emptied per-tick lists, kept for their memory only.
#[derive(Debug, Default)]
struct Scratch {
    order: Vec<&'static Usage>,
    managed: Vec<(&'static Usage, usize, Option<usize>)>,
    slots: Vec<Slot<'static>>,
}

/// One managed domain during one tick: its inputs and what was decided.
#[derive(Debug)]
pub(super) struct Slot<'a> {
    pub usage: &'a Usage,
    /// Its policy, or a copy fitted to what the domain can take.
    pub policy: &'a DomainPolicy,
    pub sla_changed: bool,
    /// What the policy remembers of it between ticks.
    pub carried: &'a mut Carried,
    /// The uncooperative flag to publish this tick, when it changes.
    pub balloon_flag: Option<FlagChange>,
    /// Cap points it asked for this tick and did not get (see [`Shortfall`]).
    pub unmet_cpu: u32,
    /// Memory it asked for this tick beyond what the host had free.
    pub unmet_mem_kb: KiB,
    pub cap: Decision<u32>,
    pub mem: Decision<KiB>,
}

/// A decided value for one resource of one domain.
#[derive(Debug, Clone)]
pub(super) struct Decision<T> {
    pub to: T,
    pub reason: Option<Reason>,
    /// Made to restore a bound (guarantee, ceiling, pool); such changes
    /// ignore cooldown, step and deadband, and do not count as a trend.
    pub forced: bool,
}

impl Slot<'_> {
    /// Whether the decided cap is still below the domain's ceiling.
    pub fn can_grow(&self) -> bool {
        self.cap.to < self.policy.cap_ceiling()
    }
}

impl<T: Copy> Decision<T> {
    fn keep(current: T) -> Self {
        Self {
            to: current,
            reason: None,
            forced: false,
        }
    }

    pub fn set(&mut self, to: T, reason: Reason) {
        self.to = to;
        self.reason = Some(reason);
    }

    pub fn force(&mut self, to: T, reason: Reason) {
        self.set(to, reason);
        self.forced = true;
    }
}

impl Policy {
    pub fn new(config: PolicyConfig) -> Self {
        Self::with_law(config, Law::Rex)
    }

    /// A policy deciding by `law` (a baseline only for comparisons).
    pub fn with_law(config: PolicyConfig, law: Law) -> Self {
        let mut policy = Self {
            config: PolicyConfig::default(),
            by_name: HashMap::new(),
            sla_changed: HashSet::new(),
            remembered: Vec::new(),
            warned_uncapped: HashMap::new(),
            warned_misfit: HashMap::new(),
            over_committed: false,
            tick: 0,
            law,
            scratch: Scratch::default(),
        };
        policy.set_config(config);
        policy
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// The policy of domain `name`, if it is managed; O(1), unlike
    /// [`PolicyConfig::domain`].
    pub fn domain(&self, name: &str) -> Option<&DomainPolicy> {
        self.by_name.get(name).map(|&i| &self.config.domains[i])
    }

    /// Checks that `config` can be applied on `host`: bounds in order, names
    /// unique, and the guaranteed levels within the host's capacity. The
    /// error lists every problem found, naming the domain.
    pub fn validate(config: &PolicyConfig, host: &HostInfo) -> Result<(), PolicyError> {
        validate::validate(config, host)
    }

    /// Replaces the configuration (a reload). Cooldowns are kept; pending
    /// level changes of domains still configured are kept too.
    pub fn set_config(&mut self, config: PolicyConfig) {
        let mut by_name = HashMap::with_capacity(config.domains.len());
        for (i, domain) in config.domains.iter().enumerate() {
            // With duplicate names (rejected by validate) the first one wins.
            by_name.entry(domain.name.clone()).or_insert(i);
        }
        self.sla_changed.retain(|name| by_name.contains_key(name));
        // A level changed by the reload is a new SLA level: applied at the
        // next tick as it is, up or down, as `set_level` does.
        for domain in &config.domains {
            let changed = self.domain(&domain.name).is_some_and(|old| {
                old.guaranteed_cap() != domain.guaranteed_cap()
                    || old.guaranteed_mem_kb() != domain.guaranteed_mem_kb()
            });
            if changed {
                self.sla_changed.insert(domain.name.clone());
            }
        }
        // The indices the last tick remembered are of the old configuration.
        for remembered in &mut self.remembered {
            remembered.policy_index = None;
        }
        self.by_name = by_name;
        self.config = config;
    }

    /// Gives domain `name` a new SLA level, applied at the next
    /// [`Policy::decide`] with [`Reason::SlaChanged`]. False if no domain of
    /// that name is configured.
    pub fn set_level(&mut self, name: &str, level: Level) -> bool {
        let Some(&i) = self.by_name.get(name) else {
            return false;
        };
        self.config.domains[i].level = level;
        self.sla_changed.insert(name.to_string());
        true
    }

    /// Decides this tick's plan from the usage of every alive domain.
    pub fn decide(&mut self, host: &HostInfo, usage: &[Usage]) -> Plan {
        self.tick += 1;
        let tick = self.tick;
        let host_policy = &self.config.host;

        let mut order: Vec<&Usage> = recycle(std::mem::take(&mut self.scratch.order));
        order.extend(usage);
        order.sort_by_key(|u| u.domid);
        // With two alive domains of one name (Xen forbids it), the lower
        // domid is managed and the other is not.
        let mut claimed = vec![false; self.config.domains.len()];
        let mut carried = std::mem::take(&mut self.remembered);
        // Each managed domain with its policy and the remembered entry it
        // continues, if any, in domid order (as `carried` is).
        let mut managed: Vec<(&Usage, usize, Option<usize>)> =
            recycle(std::mem::take(&mut self.scratch.managed));
        managed.reserve(order.len());
        let mut next = 0;
        let mut unmanaged_caps: u64 = 0;
        for &u in &order {
            if u.domid == 0 {
                continue;
            }
            while carried.get(next).is_some_and(|c| c.domid < u.domid) {
                next += 1;
            }
            // A domid now used by a domain of another name starts afresh.
            let known = carried
                .get(next)
                .is_some_and(|c| c.domid == u.domid && c.name == u.name)
                .then_some(next);
            if known.is_some() {
                next += 1;
            }
            let index = match known.and_then(|k| carried[k].policy_index) {
                Some(i) => Some(i),
                None => self.by_name.get(u.name.as_ref()).copied(),
            };
            let managed_index = index.filter(|&i| !std::mem::replace(&mut claimed[i], true));
            let Some(i) = managed_index else {
                if u.sched.cap > 0 {
                    unmanaged_caps += u64::from(u.sched.cap);
                } else if self.warned_uncapped.insert(u.domid, tick).is_none() {
                    log::warn!(
                        "domain {} ({}) is not managed and uncapped: rex cannot account \
                         for the CPU it takes",
                        u.name,
                        u.domid
                    );
                }
                continue;
            };
            managed.push((u, i, known));
        }
        // A steady host continues every entry in place; only a tick where
        // domains came, went or changed hands moves them.
        let in_place = managed.len() == carried.len()
            && managed.iter().enumerate().all(|(at, m)| m.2 == Some(at));
        if !in_place {
            let mut old: Vec<Option<Carried>> = carried.into_iter().map(Some).collect();
            carried = managed
                .iter()
                .map(|&(u, _, known)| {
                    known
                        .and_then(|k| old[k].take())
                        .unwrap_or_else(|| Carried::new(u.domid, u.name.clone()))
                })
                .collect();
        }
        // A policy asking more than the domain can take is held within it by
        // a fitted copy, made before the slots borrow it.
        let mut fitted: Vec<(usize, DomainPolicy)> = Vec::new();
        for (at, &(u, i, _)) in managed.iter().enumerate() {
            if let Some((copy, what)) = validate::fit_to_domain(&self.config.domains[i], u) {
                if self.warned_misfit.insert(u.domid, tick).is_none() {
                    log::warn!(
                        "domain {} ({}): its policy asks for {what}: held within them",
                        u.name,
                        u.domid
                    );
                }
                fitted.push((at, copy));
            }
        }
        let mut fitted_copies = fitted.iter().peekable();
        let mut slots: Vec<Slot> = recycle(std::mem::take(&mut self.scratch.slots));
        slots.reserve(managed.len());
        for (at, (&(u, i, _), carried)) in managed.iter().zip(carried.iter_mut()).enumerate() {
            carried.policy_index = Some(i);
            let policy = match fitted_copies.next_if(|(of, _)| *of == at) {
                Some((_, copy)) => copy,
                None => &self.config.domains[i],
            };
            slots.push(Slot {
                usage: u,
                policy,
                sla_changed: !self.sla_changed.is_empty()
                    && self.sla_changed.contains(u.name.as_ref()),
                carried,
                balloon_flag: None,
                unmet_cpu: 0,
                unmet_mem_kb: 0,
                cap: Decision::keep(u.sched.cap),
                mem: Decision::keep(u.mem_target_kb),
            });
        }
        self.warned_uncapped.retain(|_, seen| *seen == tick);
        // A domain that fits again, or is gone, is warned about afresh.
        self.warned_misfit.retain(|_, seen| *seen == tick);

        let pool = cpu::pool(host, host_policy, unmanaged_caps);
        let law = self.law.control();
        let fits = law.cpu(host_policy, pool, &mut slots, tick);
        if !fits && !self.over_committed {
            log::warn!(
                "the managed domains' guarantees exceed the CPU pool of {pool}%: \
                 each is held at its guarantee"
            );
        }
        self.over_committed = !fits;
        law.memory(host_policy, host.free_mem_kb, &mut slots, tick);

        let plan = if self.law == Law::Static {
            Plan::default()
        } else {
            build_plan(&mut slots)
        };
        if !self.sla_changed.is_empty() {
            for slot in &slots {
                self.sla_changed.remove(slot.usage.name.as_ref());
            }
        }
        self.scratch = Scratch {
            order: recycle(order),
            managed: recycle(managed),
            slots: recycle(slots),
        };
        self.remembered = carried;
        plan
    }
}

/// Orders the changes: cap decreases before increases (so the pool is never
/// over-committed mid-way), weights, balloon flags, then every memory shrink
/// before any grow. The slots' reasons are moved into the changes.
fn build_plan(slots: &mut [Slot]) -> Plan {
    let mut cap_down = Vec::new();
    let mut cap_up = Vec::new();
    let mut weights = Vec::new();
    let mut flags = Vec::new();
    let mut mem_down = Vec::new();
    let mut mem_up = Vec::new();
    let mut shortfalls = Vec::new();
    for slot in slots.iter_mut() {
        let u = slot.usage;
        if slot.unmet_cpu > 0 || slot.unmet_mem_kb > 0 {
            shortfalls.push(Shortfall {
                domid: u.domid,
                name: Arc::clone(&u.name),
                cpu_pct: slot.unmet_cpu,
                mem_kb: slot.unmet_mem_kb,
            });
        }
        let change = |action, reason| Change {
            domid: u.domid,
            name: Arc::clone(&u.name),
            action,
            reason,
        };
        let (from, to) = (u.sched.cap, slot.cap.to);
        if to != from {
            if let Some(reason) = slot.cap.reason.take() {
                // From uncapped (0) to any cap is a decrease.
                let list = if from == 0 || to < from {
                    &mut cap_down
                } else {
                    &mut cap_up
                };
                list.push(change(Action::Cap { from, to }, reason));
            }
        }
        let weight = weight_of(slot);
        if u.sched.weight != weight {
            weights.push(change(
                Action::Weight {
                    from: u.sched.weight,
                    to: weight,
                },
                Reason::Guarantee,
            ));
        }
        if let Some(flag) = slot.balloon_flag.take() {
            flags.push(change(
                Action::BalloonFlag {
                    uncooperative: flag.uncooperative,
                },
                flag.reason,
            ));
        }
        let (from, to) = (u.mem_target_kb, slot.mem.to);
        if to != from {
            if let Some(reason) = slot.mem.reason.take() {
                let list = if to < from {
                    &mut mem_down
                } else {
                    &mut mem_up
                };
                list.push(change(Action::Memory { from, to }, reason));
            }
        }
    }
    let mut changes = cap_down;
    changes.extend(cap_up);
    changes.extend(weights);
    changes.extend(flags);
    changes.extend(mem_down);
    changes.extend(mem_up);
    Plan {
        changes,
        shortfalls,
    }
}

/// `list` emptied, as a list of another lifetime in the same memory: an
/// empty list collected into items of the same size and alignment reuses
/// its allocation (std's in-place collection).
fn recycle<T, U>(mut list: Vec<T>) -> Vec<U> {
    list.clear();
    list.into_iter().filter_map(|_| None).collect()
}

/// The weight a slot's policy asks for, within Xen's range.
fn weight_of(slot: &Slot) -> u32 {
    slot.policy
        .weight
        .clamp(*WEIGHT_RANGE.start(), *WEIGHT_RANGE.end())
}

#[cfg(test)]
mod tests;
