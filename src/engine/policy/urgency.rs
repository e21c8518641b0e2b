//! Which changes of a guest's published values are worth a decision before
//! the next tick: those that put the domain in a class that acts (memory
//! pressure appears; an SLA miss appears). Judged from the report the last
//! tick got and the one the guest published since, with the policy's own
//! thresholds; anything else waits for the tick.

use super::memory::under_pressure;
use super::Policy;
use crate::engine::model::GuestReport;

/// Why a domain's new values cannot wait for the tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Urgency {
    /// Free memory fell below the pressure threshold.
    MemoryPressure { free_kb: u64, total_kb: u64 },
    /// The reported response time rose above the SLA.
    SlaMissed { response_ms: f64, sla_ms: f64 },
}

impl Urgency {
    pub fn describe(&self) -> String {
        match self {
            Self::MemoryPressure { free_kb, total_kb } => {
                format!("memory pressure published ({free_kb} of {total_kb} kB free)")
            }
            Self::SlaMissed {
                response_ms,
                sla_ms,
            } => format!("SLA miss published ({response_ms:.0} ms > {sla_ms:.0} ms)"),
        }
    }
}

impl Policy {
    /// Whether domain `name`'s values, `before` at the last tick and `now`,
    /// changed into a class that acts. Not for a domain rex does not
    /// manage, nor for stale values (nothing acts on those).
    pub fn urgency(&self, name: &str, before: &GuestReport, now: &GuestReport) -> Option<Urgency> {
        let domain = self.domain(name)?;
        if now.stale {
            return None;
        }
        let pressed = |r: &GuestReport| match (r.mem_free_kb, r.mem_total_kb) {
            (Some(free), Some(total)) if !r.stale => {
                under_pressure(&self.config().host, free, total).then_some((free, total))
            }
            _ => None,
        };
        if let (Some((free_kb, total_kb)), None) = (pressed(now), pressed(before)) {
            return Some(Urgency::MemoryPressure { free_kb, total_kb });
        }
        let sla_ms = domain.sla_ms?;
        let missed = |r: &GuestReport| r.response_ms.filter(|&ms| !r.stale && ms > sla_ms);
        match (missed(now), missed(before)) {
            (Some(response_ms), None) => Some(Urgency::SlaMissed {
                response_ms,
                sla_ms,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::sla::PolicyConfig;

    fn policy() -> Policy {
        let mut config = PolicyConfig::default();
        config.host.mem_pressure_free_pct = 20.0;
        config.host.mem_pressure_free_kb = 0;
        config.domains = vec![
            crate::engine::testutil::memory_domain("web", Some(900.0)),
            crate::engine::testutil::memory_domain("batch", None),
        ];
        Policy::new(config)
    }

    fn memory(free_kb: u64) -> GuestReport {
        GuestReport {
            mem_free_kb: Some(free_kb),
            mem_total_kb: Some(100_000),
            ..GuestReport::default()
        }
    }

    fn response(ms: f64) -> GuestReport {
        GuestReport {
            response_ms: Some(ms),
            ..GuestReport::default()
        }
    }

    #[test]
    fn pressure_that_appears_is_urgent_pressure_that_stays_is_not() {
        let p = policy();
        assert_eq!(
            p.urgency("batch", &memory(50_000), &memory(10_000)),
            Some(Urgency::MemoryPressure {
                free_kb: 10_000,
                total_kb: 100_000
            })
        );
        assert!(p
            .urgency("batch", &GuestReport::default(), &memory(10_000))
            .is_some());
        assert_eq!(p.urgency("batch", &memory(12_000), &memory(10_000)), None);
        assert_eq!(p.urgency("batch", &memory(10_000), &memory(50_000)), None);
        assert_eq!(p.urgency("batch", &memory(50_000), &memory(30_000)), None);
    }

    #[test]
    fn an_sla_miss_that_appears_is_urgent_for_a_domain_with_an_sla() {
        let p = policy();
        assert!(matches!(
            p.urgency("web", &response(300.0), &response(1500.0)),
            Some(Urgency::SlaMissed { sla_ms, .. }) if sla_ms == 900.0
        ));
        assert_eq!(p.urgency("web", &response(1200.0), &response(1500.0)), None);
        assert_eq!(p.urgency("web", &response(300.0), &response(800.0)), None);
        assert_eq!(
            p.urgency("batch", &response(300.0), &response(1500.0)),
            None
        );
    }

    #[test]
    fn unmanaged_domains_and_stale_values_are_never_urgent() {
        let p = policy();
        assert_eq!(p.urgency("other", &memory(50_000), &memory(1_000)), None);
        let stale = GuestReport {
            stale: true,
            ..memory(1_000)
        };
        assert_eq!(p.urgency("batch", &memory(50_000), &stale), None);
    }
}
