//! The control protocol: one request line in, one answer out, then the
//! daemon closes the connection.
//!
//! ```text
//! request  = "status" [" json"] | "sla " DOMAIN " " CHANGE | "pause" | "resume"
//! CHANGE   = KEY=VALUE[,KEY=VALUE...] | "off"     (keys: sla_ms, cap, memory)
//! answer   = "ok\n" BODY | "error: " MESSAGE "\n"
//! ```
//!
//! A request is at most [`MAX_REQUEST`] bytes of UTF-8 ending in a newline
//! (or the end of the client's writes). Values are read as in the policy
//! file (`memory=256M`, the same ranges), so what `rex sla` accepts is what
//! the file would.

use crate::config::Spec;
use crate::engine::limits::CAP_LIMIT;
use crate::engine::{DomainPolicy, KiB};

/// The longest request line, newline included.
pub const MAX_REQUEST: usize = 4096;

/// The keys `sla` takes, its flag (`off`) last.
pub const SLA_KEYS: &[&str] = &["sla_ms", "cap", "memory", SLA_OFF];
const SLA_OFF: &str = "off";

/// What a client asks.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Status { json: bool },
    Sla { domain: String, change: SlaChange },
    Pause,
    Resume,
}

/// A new SLA or level for one domain; `None` fields are kept.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SlaChange {
    /// `Some(None)`: no SLA any more (`off`, best-effort).
    pub sla_ms: Option<Option<f64>>,
    pub cap_pct: Option<u32>,
    pub mem_kb: Option<KiB>,
}

impl Request {
    /// Parses one request line (without its newline). The error is the
    /// message the client is sent.
    pub fn parse(line: &[u8]) -> Result<Self, String> {
        let line = std::str::from_utf8(line).map_err(|_| "the request is not UTF-8".to_string())?;
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        match words.as_slice() {
            ["status"] => Ok(Self::Status { json: false }),
            ["status", "json"] => Ok(Self::Status { json: true }),
            ["pause"] => Ok(Self::Pause),
            ["resume"] => Ok(Self::Resume),
            ["sla", domain, change @ ..] if !change.is_empty() => Ok(Self::Sla {
                domain: domain.to_string(),
                change: SlaChange::parse(&change.join(","))?,
            }),
            ["sla", ..] => Err("usage: sla DOMAIN sla_ms=MS|cap=PCT|memory=SIZE|off".into()),
            [] => Err("empty request (known: status, sla, pause, resume)".into()),
            [word, ..] => Err(format!(
                "unknown request `{}' (known: status, sla, pause, resume)",
                crate::config::shown(word)
            )),
        }
    }

    /// The request as a line, for clients.
    pub fn to_line(&self) -> String {
        match self {
            Self::Status { json: false } => "status".into(),
            Self::Status { json: true } => "status json".into(),
            Self::Pause => "pause".into(),
            Self::Resume => "resume".into(),
            Self::Sla { domain, change } => format!("sla {domain} {}", change.to_spec()),
        }
    }
}

impl SlaChange {
    /// Parses `sla_ms=600,cap=40,memory=256M` or `off` (with or without
    /// levels), with the policy file's ranges.
    pub fn parse(text: &str) -> Result<Self, String> {
        let spec = Spec::parse_with_flags("request".into(), text, SLA_KEYS, &[SLA_OFF])
            .map_err(|e| e.message)?;
        let sla_ms = spec
            .f64_in("sla_ms", 0.001..=3_600_000.0)
            .map_err(|e| e.message)?;
        if sla_ms.is_some() && spec.has_flag(SLA_OFF) {
            return Err("`off' and `sla_ms=' contradict each other".into());
        }
        let change = Self {
            sla_ms: if spec.has_flag(SLA_OFF) {
                Some(None)
            } else {
                sla_ms.map(Some)
            },
            cap_pct: spec.u32_in("cap", 1..=CAP_LIMIT).map_err(|e| e.message)?,
            mem_kb: spec.size_kb("memory").map_err(|e| e.message)?,
        };
        if change == Self::default() {
            return Err("nothing to change (sla_ms=MS, cap=PCT, memory=SIZE or off)".into());
        }
        Ok(change)
    }

    fn to_spec(self) -> String {
        let mut parts = Vec::new();
        match self.sla_ms {
            Some(Some(ms)) => parts.push(format!("sla_ms={ms}")),
            Some(None) => parts.push(SLA_OFF.to_string()),
            None => {}
        }
        if let Some(cap) = self.cap_pct {
            parts.push(format!("cap={cap}"));
        }
        if let Some(kb) = self.mem_kb {
            parts.push(format!("memory={kb}K"));
        }
        parts.join(",")
    }

    /// Applies the change to `policy`: what changed, as `key from -> to`
    /// (empty when every value was already so). A level outside the
    /// domain's bounds is refused, and `policy` is then unchanged.
    pub fn apply(self, policy: &mut DomainPolicy) -> Result<Vec<String>, String> {
        let name = &policy.name;
        if let Some(cap) = self.cap_pct {
            if cap < policy.cap_min || cap > policy.cap_max {
                return Err(format!(
                    "domain `{name}': cap={cap} is outside its cap_min..cap_max {}..{}",
                    policy.cap_min, policy.cap_max
                ));
            }
        }
        if let Some(kb) = self.mem_kb {
            if kb < policy.mem_min_kb || kb > policy.mem_ceiling_kb() {
                return Err(format!(
                    "domain `{name}': memory={} MiB is outside its mem_min..mem_max {}..{} MiB",
                    kb / 1024,
                    policy.mem_min_kb / 1024,
                    policy.mem_ceiling_kb() / 1024
                ));
            }
        }
        let mut changed = Vec::new();
        let sla_text = |s: Option<f64>| s.map_or("off".to_string(), |ms| format!("{ms} ms"));
        if let Some(sla) = self.sla_ms {
            if sla != policy.sla_ms {
                changed.push(format!(
                    "sla {} -> {}",
                    sla_text(policy.sla_ms),
                    sla_text(sla)
                ));
                policy.sla_ms = sla;
            }
        }
        if let Some(cap) = self.cap_pct {
            if cap != policy.level.cap_pct {
                changed.push(format!("cap level {}% -> {cap}%", policy.level.cap_pct));
                policy.level.cap_pct = cap;
            }
        }
        if let Some(kb) = self.mem_kb {
            if kb != policy.level.mem_kb {
                changed.push(format!(
                    "memory level {} MiB -> {} MiB",
                    policy.level.mem_kb / 1024,
                    kb / 1024
                ));
                policy.level.mem_kb = kb;
            }
        }
        Ok(changed)
    }
}

/// The answer to a request that worked.
pub fn ok(body: &str) -> String {
    let mut text = String::with_capacity(body.len() + 4);
    text.push_str("ok\n");
    text.push_str(body);
    if !body.is_empty() && !body.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// The answer to a request that did not: one line, nothing changed.
pub fn error(message: &str) -> String {
    format!("error: {}\n", message.replace('\n', " "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Level;

    fn policy() -> DomainPolicy {
        DomainPolicy {
            name: "vm2".into(),
            sla_ms: Some(900.0),
            level: Level {
                load: 0,
                cap_pct: 20,
                mem_kb: 128 * 1024,
            },
            cap_min: 10,
            cap_max: 80,
            mem_min_kb: 64 * 1024,
            mem_max_kb: 512 * 1024,
            weight: 256,
            priority: 0,
        }
    }

    #[test]
    fn every_request_parses_and_prints_back() {
        let cases = [
            ("status", Request::Status { json: false }),
            ("  status   json ", Request::Status { json: true }),
            ("pause", Request::Pause),
            ("resume", Request::Resume),
            (
                "sla vm2 sla_ms=600 cap=40",
                Request::Sla {
                    domain: "vm2".into(),
                    change: SlaChange {
                        sla_ms: Some(Some(600.0)),
                        cap_pct: Some(40),
                        mem_kb: None,
                    },
                },
            ),
            (
                "sla vm2 off,memory=256M",
                Request::Sla {
                    domain: "vm2".into(),
                    change: SlaChange {
                        sla_ms: Some(None),
                        cap_pct: None,
                        mem_kb: Some(256 * 1024),
                    },
                },
            ),
        ];
        for (line, expected) in cases {
            let parsed = Request::parse(line.as_bytes()).unwrap();
            assert_eq!(parsed, expected, "{line}");
            assert_eq!(
                Request::parse(parsed.to_line().as_bytes()).unwrap(),
                expected
            );
        }
    }

    #[test]
    fn bad_requests_are_refused_with_a_reason() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty request"),
            (b"reboot", "unknown request `reboot'"),
            (b"status xml", "unknown request `status'"),
            (b"sla vm2", "usage: sla DOMAIN"),
            (b"sla vm2 cap", "`cap' needs a value"),
            (b"sla vm2 cap=0", "`cap=0': out of range"),
            (b"sla vm2 cap=forty", "`cap=forty': not"),
            (b"sla vm2 weight=5", "unknown key `weight'"),
            (b"sla vm2 off sla_ms=5", "contradict"),
            (b"sla vm2 cap=4,cap=5", "given twice"),
            (b"sla vm2 memory=lots", "memory"),
            (b"status\xff", "not UTF-8"),
        ];
        for (line, expected) in cases {
            let e = Request::parse(line).expect_err(&String::from_utf8_lossy(line));
            assert!(
                e.contains(expected),
                "{:?}: {e}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn a_change_names_what_moved_and_a_level_out_of_bounds_changes_nothing() {
        let mut p = policy();
        let change = SlaChange::parse("sla_ms=600,cap=40").unwrap();
        assert_eq!(
            change.apply(&mut p).unwrap(),
            vec!["sla 900 ms -> 600 ms", "cap level 20% -> 40%"]
        );
        assert_eq!((p.sla_ms, p.level.cap_pct), (Some(600.0), 40));
        // The same again changes nothing and says so.
        assert!(change.apply(&mut p).unwrap().is_empty());
        let before = p.clone();
        for text in ["cap=90", "cap=5", "memory=32M", "memory=1G"] {
            let e = SlaChange::parse(text).unwrap().apply(&mut p).unwrap_err();
            assert!(e.contains("outside"), "{text}: {e}");
            assert_eq!(p, before, "{text}");
        }
        SlaChange::parse("off").unwrap().apply(&mut p).unwrap();
        assert_eq!(p.sla_ms, None);
    }

    #[test]
    fn answers_are_one_status_line_then_the_body() {
        assert_eq!(ok("a\nb"), "ok\na\nb\n");
        assert_eq!(ok(""), "ok\n");
        assert_eq!(error("no\nway"), "error: no way\n");
    }
}
