//! Checks of a policy configuration against a host, before it is used.

use std::collections::HashSet;

use super::{Culprit, Misfit, PolicyError};
use crate::engine::limits::{cpu_capacity_pct, cpu_pool_pct, WEIGHT_RANGE};
use crate::engine::model::{HostInfo, KiB};
use crate::engine::sla::{DomainPolicy, HostPolicy, PolicyConfig};
use crate::engine::Usage;

/// How many domains an over-capacity message names, largest first.
const NAMED_IN_SUMS: usize = 5;

pub fn validate(config: &PolicyConfig, host: &HostInfo) -> Result<(), PolicyError> {
    let mut misfits = Vec::new();
    let mut add = |about: Culprit, message: String| misfits.push(Misfit { about, message });
    for problem in host_problems(&config.host) {
        // Each starts with the knob's name.
        let knob = problem.split(' ').next().unwrap_or_default().to_string();
        add(Culprit::Key(knob), problem);
    }
    let mut names = HashSet::new();
    for domain in &config.domains {
        if domain.name.is_empty() {
            add(Culprit::Domains, "a domain has an empty name".to_string());
        } else if !names.insert(domain.name.as_str()) {
            add(
                Culprit::Domain(domain.name.clone()),
                format!("domain `{}' is listed twice", domain.name),
            );
        }
        for problem in domain_problems(domain) {
            add(Culprit::Domain(domain.name.clone()), problem);
        }
    }
    check_capacity(config, host, &mut add);
    if misfits.is_empty() {
        Ok(())
    } else {
        Err(PolicyError { misfits })
    }
}

/// What is wrong with the host-wide knobs on any host. Each problem starts
/// with the name of the knob at fault (policy files report it at that
/// knob's line).
pub fn host_problems(h: &HostPolicy) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, message: String| {
        if !ok {
            problems.push(message);
        }
    };
    check(
        h.smoothing > 0.0 && h.smoothing <= 1.0,
        format!("smoothing {} must be in (0, 1]", h.smoothing),
    );
    check(
        h.saturation_pct > 0.0 && h.saturation_pct <= 100.0,
        format!("saturation {}% must be in (0, 100]", h.saturation_pct),
    );
    check(
        (0.0..100.0).contains(&h.idle_pct),
        format!("idle {}% must be in [0, 100)", h.idle_pct),
    );
    check(
        h.idle_pct < h.saturation_pct,
        format!(
            "idle {}% must be below saturation {}%",
            h.idle_pct, h.saturation_pct
        ),
    );
    check(
        (0.0..100.0).contains(&h.mem_pressure_free_pct),
        format!(
            "mem_pressure {}% must be in [0, 100)",
            h.mem_pressure_free_pct
        ),
    );
    check(
        h.sla_target_pct > 0.0 && h.sla_target_pct <= 100.0,
        format!("sla_target {}% must be in (0, 100]", h.sla_target_pct),
    );
    check(
        h.max_step_cap >= 1,
        "max_step_cap must be at least 1".to_string(),
    );
    check(
        h.interval_ms >= 1,
        "interval must be at least 1 ms".to_string(),
    );
    problems
}

/// What is wrong with one domain's policy on any host, each problem naming
/// the domain. Policy files check each domain with this as they read it,
/// to report the problem at its line.
pub fn domain_problems(d: &DomainPolicy) -> Vec<String> {
    let mut problems = Vec::new();
    let name = &d.name;
    if d.cap_max == 0 {
        problems.push(format!(
            "domain `{name}': cap_max must be at least 1 (a cap of 0 means uncapped in Xen)"
        ));
    }
    if d.cap_min > d.cap_max {
        problems.push(format!(
            "domain `{name}': cap_min {} is above cap_max {}",
            d.cap_min, d.cap_max
        ));
    }
    if d.mem_max_kb == 0 {
        problems.push(format!(
            "domain `{name}': mem_max must be above 0 (rex would balloon it to nothing)"
        ));
    }
    if d.mem_min_kb > d.mem_max_kb {
        problems.push(format!(
            "domain `{name}': mem_min {} is above mem_max {}",
            mib(d.mem_min_kb),
            mib(d.mem_max_kb)
        ));
    }
    if !WEIGHT_RANGE.contains(&d.weight) {
        problems.push(format!(
            "domain `{name}': weight {} must be in {}..={}",
            d.weight,
            WEIGHT_RANGE.start(),
            WEIGHT_RANGE.end()
        ));
    }
    if let Some(sla_ms) = d.sla_ms.filter(|ms| !(ms.is_finite() && *ms > 0.0)) {
        problems.push(format!(
            "domain `{name}': sla_ms {sla_ms} must be a positive number of ms"
        ));
    }
    let level = &d.level;
    if d.cap_min <= d.cap_max && !(d.cap_min..=d.cap_max).contains(&level.cap_pct) {
        problems.push(format!(
            "domain `{name}': level cap {} is outside [cap_min {}, cap_max {}]",
            level.cap_pct, d.cap_min, d.cap_max
        ));
    }
    if d.mem_min_kb <= d.mem_max_kb && !(d.mem_min_kb..=d.mem_max_kb).contains(&level.mem_kb) {
        problems.push(format!(
            "domain `{name}': level memory {} is outside [mem_min {}, mem_max {}]",
            mib(level.mem_kb),
            mib(d.mem_min_kb),
            mib(d.mem_max_kb)
        ));
    }
    problems
}

/// The floors and the levels must fit the host: CPU in the pool left after
/// dom0 and the reserve, memory in the host's memory less the slush.
fn check_capacity(config: &PolicyConfig, host: &HostInfo, add: &mut impl FnMut(Culprit, String)) {
    let h = &config.host;
    let capacity = cpu_capacity_pct(host.guest_pcpus);
    let held = u64::from(h.dom0_cpu_pct) + u64::from(h.reserve_cpu_pct);
    if held > capacity {
        add(
            Culprit::Key("dom0_cpu".into()),
            format!(
                "dom0_cpu {}% + reserve_cpu {}% exceed the guests' {} pCPU(s) ({capacity}%)",
                h.dom0_cpu_pct, h.reserve_cpu_pct, host.guest_pcpus
            ),
        );
    }
    let pool = cpu_pool_pct(host.guest_pcpus, h.dom0_cpu_pct, h.reserve_cpu_pct, 0);
    let pool_text = format!(
        "the CPU pool of {pool}% ({} pCPU(s) × 100 − dom0_cpu {} − reserve_cpu {})",
        host.guest_pcpus, h.dom0_cpu_pct, h.reserve_cpu_pct
    );
    let floors = sum_named(
        &config.domains,
        |d| u64::from(d.cap_floor()),
        |v| format!("{v}%"),
    );
    let levels = sum_named(
        &config.domains,
        |d| u64::from(d.guaranteed_cap()),
        |v| format!("{v}%"),
    );
    if floors.0 > pool {
        add(
            Culprit::Domains,
            format!(
                "the cap floors (cap_min) add up to {}% and exceed {pool_text}: {}",
                floors.0, floors.1
            ),
        );
    } else if levels.0 > pool {
        add(
            Culprit::Domains,
            format!(
                "the guaranteed caps (SLA levels) add up to {}% and exceed {pool_text}: {}",
                levels.0, levels.1
            ),
        );
    }
    let memory = host.total_mem_kb.saturating_sub(h.slush_kb);
    let mem_floors = sum_named(&config.domains, |d| d.mem_min_kb, mib);
    let mem_levels = sum_named(&config.domains, |d| d.guaranteed_mem_kb(), mib);
    let mem_text = format!(
        "the host's {} less the slush of {}",
        mib(host.total_mem_kb),
        mib(h.slush_kb)
    );
    if mem_floors.0 > memory {
        add(
            Culprit::Domains,
            format!(
                "the memory floors (mem_min) add up to {} and exceed {mem_text}: {}",
                mib(mem_floors.0),
                mem_floors.1
            ),
        );
    } else if mem_levels.0 > memory {
        add(
            Culprit::Domains,
            format!(
                "the guaranteed memory (SLA levels) adds up to {} and exceeds {mem_text}: {}",
                mib(mem_levels.0),
                mem_levels.1
            ),
        );
    }
}

/// The sum of `value` over the domains, and the largest few named.
fn sum_named(
    domains: &[DomainPolicy],
    value: impl Fn(&DomainPolicy) -> u64,
    show: impl Fn(u64) -> String,
) -> (u64, String) {
    let mut values: Vec<(u64, &str)> = domains
        .iter()
        .map(|d| (value(d), d.name.as_str()))
        .collect();
    let total = values.iter().fold(0u64, |sum, v| sum.saturating_add(v.0));
    values.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let mut named: Vec<String> = values
        .iter()
        .take(NAMED_IN_SUMS)
        .map(|(v, name)| format!("{name} {}", show(*v)))
        .collect();
    if values.len() > NAMED_IN_SUMS {
        named.push(format!("and {} more", values.len() - NAMED_IN_SUMS));
    }
    (total, named.join(", "))
}

/// A domain's policy fitted to what the domain can take, when its caps
/// ask for more than 100% a vCPU: Xen refuses such a cap, so a misfit
/// policy would fail a change every tick. (Memory beyond the domain's
/// maxmem is never asked for: growth stops there, `memory.rs`.) `None` when
/// the policy fits as it is; else the fitted copy and what was fitted, for
/// one warning. Called for every domain every tick: the check is inlined,
/// the fitting kept apart.
#[inline]
pub(super) fn fit_to_domain(p: &DomainPolicy, u: &Usage) -> Option<(DomainPolicy, String)> {
    let cap_limit = u.vcpus.max(1).saturating_mul(100);
    if p.cap_max <= cap_limit && p.cap_min <= cap_limit && p.level.cap_pct <= cap_limit {
        return None;
    }
    Some(fitted(p, u, cap_limit))
}

#[cold]
fn fitted(p: &DomainPolicy, u: &Usage, cap_limit: u32) -> (DomainPolicy, String) {
    let mut fitted = p.clone();
    fitted.cap_max = p.cap_max.min(cap_limit);
    fitted.cap_min = p.cap_min.min(cap_limit);
    fitted.level.cap_pct = p.level.cap_pct.min(cap_limit);
    let what = format!(
        "caps up to {}% where its {} vCPU(s) allow {cap_limit}%",
        p.cap_max.max(p.cap_min).max(p.level.cap_pct),
        u.vcpus.max(1)
    );
    (fitted, what)
}

/// Memory for messages, in MiB when whole, else KiB.
fn mib(kb: KiB) -> String {
    if kb.is_multiple_of(1024) {
        format!("{}M", kb / 1024)
    } else {
        format!("{kb}K")
    }
}
