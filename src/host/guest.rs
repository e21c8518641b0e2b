//! Strict parsing of the values a guest publishes about itself in xenstore.
//!
//! Everything under a domain's `data/` directory is writable by the guest,
//! so it is untrusted input: a buggy or hostile guest can write anything.
//! The parser accepts only plain decimal numbers (what XenServer's guest
//! tools and rex's own guest agent write) and clamps them to what the host
//! knows to be possible. Anything else becomes `None` for that field, with a
//! debug log line saying why. The simulator and the libxl backend share this
//! code, so garbage tests on the simulator exercise the real path.

use crate::engine::{GuestReport, KiB};

/// Free memory inside the guest, kB (XenServer guest tools' key).
pub const MEMINFO_FREE_KEY: &str = "data/meminfo_free";
/// Total memory the guest sees, kB (XenServer guest tools' key).
pub const MEMINFO_TOTAL_KEY: &str = "data/meminfo_total";
/// Mean response time the guest's application observed recently, ms (rex's key).
pub const RESPONSE_MS_KEY: &str = "data/rex/response_ms";

/// A counter rex's guest agent bumps at every publication (rex's key).
pub const SEQ_KEY: &str = "data/rex/seq";
/// The agent's publication period, ms (rex's key).
pub const PERIOD_MS_KEY: &str = "data/rex/interval_ms";

/// Whether a guest's agent still publishes. Its counter must change within
/// five of its periods (and at least 5 s: an agent in a loaded guest is
/// late now and then); values that stopped changing
/// because the agent died would otherwise be acted on for ever (a frozen
/// "low free memory" grows the guest to its ceiling). A guest publishing no
/// counter (other guest tools) is taken as it is.
#[derive(Debug, Default, Clone)]
pub struct Heartbeat {
    last: Option<Vec<u8>>,
    changed_at_ns: u64,
    stale: bool,
}

/// What a [`Heartbeat`] says of a guest's published values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// No counter published: nothing to tell.
    NoCounter,
    Fresh,
    /// The counter stopped: its values are ignored.
    Stale,
}

impl Heartbeat {
    /// Sees the counter `seq` and period at `now_ns`; logs the moment a
    /// guest goes stale and the moment it publishes again.
    pub fn observe(
        &mut self,
        domid: crate::engine::DomId,
        seq: Option<&[u8]>,
        period_ms: Option<&[u8]>,
        now_ns: u64,
    ) -> Freshness {
        let Some(seq) = seq.filter(|s| s.len() <= MAX_VALUE_LEN) else {
            self.last = None;
            self.stale = false;
            return Freshness::NoCounter;
        };
        if self.last.as_deref() != Some(seq) {
            self.last = Some(seq.to_vec());
            self.changed_at_ns = now_ns;
        }
        let period_ms = period_ms
            .and_then(|raw| parse_kib(PERIOD_MS_KEY, raw))
            .unwrap_or(1000)
            .clamp(100, 3_600_000);
        let limit_ns = (5 * period_ms).max(5000) * 1_000_000;
        let stale = now_ns.saturating_sub(self.changed_at_ns) > limit_ns;
        if stale != self.stale {
            if stale {
                log::warn!(
                    "domain {domid}: its agent stopped publishing ({SEQ_KEY} unchanged for \
                     {} ms): its values are ignored until it publishes again",
                    limit_ns / 1_000_000
                );
            } else {
                log::info!("domain {domid}: its agent publishes again");
            }
            self.stale = stale;
        }
        if stale {
            Freshness::Stale
        } else {
            Freshness::Fresh
        }
    }
}

/// What a guest wrote under its xenstore directory, as written (`None`: the
/// key is absent). Both backends hold it in this form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Published {
    pub free: Option<Vec<u8>>,
    pub total: Option<Vec<u8>>,
    pub response: Option<Vec<u8>>,
    /// [`SEQ_KEY`]: rex's agent's counter.
    pub seq: Option<Vec<u8>>,
    /// [`PERIOD_MS_KEY`]: rex's agent's period.
    pub period_ms: Option<Vec<u8>>,
}

impl Published {
    /// What the engine gets of these values at `now_ns`: nothing while the
    /// agent's counter says it is dead, else the parsed and clamped report.
    pub fn report(
        &self,
        heartbeat: &mut Heartbeat,
        domid: crate::engine::DomId,
        mem_max_kb: KiB,
        now_ns: u64,
    ) -> GuestReport {
        let freshness = heartbeat.observe(
            domid,
            self.seq.as_deref(),
            self.period_ms.as_deref(),
            now_ns,
        );
        if freshness == Freshness::Stale {
            return GuestReport {
                stale: true,
                ..GuestReport::default()
            };
        }
        parse_report(
            self.free.as_deref(),
            self.total.as_deref(),
            self.response.as_deref(),
            mem_max_kb,
        )
    }
}

/// The most memory the toolstack lets the domain have, kB: what xl's
/// `maxmem=` set when it built the domain. Not the guest's to write.
/// (Xen's own per-domain maximum, libxl dominfo's `max_memkb`, is the
/// balloon target + 1 MiB, moved by every enforced target change: a
/// ceiling taken from it would stop every growth at +1 MiB.)
pub const STATIC_MAX_KEY: &str = "memory/static-max";

/// The domain's memory ceiling, kB: `memory/static-max` when it holds a
/// plain number no larger than the host's memory, else Xen's per-domain
/// maximum `fallback_kb`.
pub fn memory_ceiling_kb(static_max: Option<&[u8]>, fallback_kb: KiB, host_total_kb: KiB) -> KiB {
    match static_max.and_then(|raw| parse_kib(STATIC_MAX_KEY, raw)) {
        Some(kb) if kb > 0 && (host_total_kb == 0 || kb <= host_total_kb) => kb,
        _ => fallback_kb,
    }
}

/// A balloon target as xenstore holds it (`memory/target`, kB), strictly.
pub fn parse_target_kb(raw: &[u8]) -> Option<KiB> {
    parse_kib("memory/target", raw)
}

/// Longest value accepted once surrounding whitespace is removed. A u64 has
/// at most 20 digits; anything longer than this is not a number a guest
/// means honestly.
pub const MAX_VALUE_LEN: usize = 32;

/// Longest response time a guest may report, ms (one hour); anything above
/// is garbage, not a very slow application.
pub const MAX_RESPONSE_MS: f64 = 3_600_000.0;

/// Parses the three guest-published values of one domain and clamps them:
/// total ≤ `mem_max_kb`, free ≤ total (or ≤ `mem_max_kb` when total is
/// missing). A response above [`MAX_RESPONSE_MS`] is dropped, not clamped:
/// clamped, it would read as a real (one-hour) SLA miss and win CPU from
/// other domains. `None` in means not published.
pub fn parse_report(
    mem_free: Option<&[u8]>,
    mem_total: Option<&[u8]>,
    response_ms: Option<&[u8]>,
    mem_max_kb: KiB,
) -> GuestReport {
    let mem_total_kb = mem_total
        .and_then(|raw| parse_kib(MEMINFO_TOTAL_KEY, raw))
        .map(|total| clamp_logged(MEMINFO_TOTAL_KEY, total, mem_max_kb));
    let free_bound = mem_total_kb.unwrap_or(mem_max_kb);
    let mem_free_kb = mem_free
        .and_then(|raw| parse_kib(MEMINFO_FREE_KEY, raw))
        .map(|free| clamp_logged(MEMINFO_FREE_KEY, free, free_bound));
    let response_ms = response_ms.and_then(parse_response_ms).filter(|&ms| {
        let believed = ms <= MAX_RESPONSE_MS;
        if !believed {
            log::debug!("{RESPONSE_MS_KEY}: {ms} ms is above {MAX_RESPONSE_MS}: ignored");
        }
        believed
    });
    GuestReport {
        mem_free_kb,
        mem_total_kb,
        response_ms,
        stale: false,
    }
}

fn clamp_logged(key: &str, value: KiB, bound: KiB) -> KiB {
    if value > bound {
        log::debug!("{key}: {value} kB clamped to {bound} kB");
        bound
    } else {
        value
    }
}

/// A kB figure: decimal digits only.
fn parse_kib(key: &str, raw: &[u8]) -> Option<KiB> {
    let text = trimmed(key, raw)?;
    if let Some(bad) = text.iter().find(|b| !b.is_ascii_digit()) {
        log::debug!("{key}: rejected, byte {bad:#04x} is not a decimal digit");
        return None;
    }
    let mut value: u64 = 0;
    for &digit in text {
        value = match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit - b'0')))
        {
            Some(v) => v,
            None => {
                log::debug!("{key}: rejected, does not fit in 64 bits");
                return None;
            }
        };
    }
    Some(value)
}

/// A response time: digits, optionally one '.' followed by more digits.
fn parse_response_ms(raw: &[u8]) -> Option<f64> {
    let key = RESPONSE_MS_KEY;
    let text = trimmed(key, raw)?;
    let (whole, fraction) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], Some(&text[dot + 1..])),
        None => (text, None),
    };
    let all_digits = |part: &[u8]| !part.is_empty() && part.iter().all(u8::is_ascii_digit);
    if !all_digits(whole) || !fraction.is_none_or(all_digits) {
        log::debug!("{key}: rejected, not of the form digits[.digits]");
        return None;
    }
    // Only ASCII digits and one dot remain, so this is valid UTF-8 and a
    // float literal without sign, exponent, "inf" or "NaN".
    let ms: f64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    ms.is_finite().then_some(ms)
}

/// Strips trailing NULs and surrounding ASCII whitespace, then enforces
/// non-emptiness and [`MAX_VALUE_LEN`].
fn trimmed<'a>(key: &str, raw: &'a [u8]) -> Option<&'a [u8]> {
    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let text = raw[..end].trim_ascii();
    if text.is_empty() {
        log::debug!("{key}: rejected, empty");
        return None;
    }
    if text.len() > MAX_VALUE_LEN {
        log::debug!(
            "{key}: rejected, {} bytes long (limit {MAX_VALUE_LEN})",
            text.len()
        );
        return None;
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: KiB = 1 << 20;

    fn free(raw: &[u8]) -> Option<KiB> {
        parse_report(Some(raw), None, None, MAX).mem_free_kb
    }
    fn total(raw: &[u8]) -> Option<KiB> {
        parse_report(None, Some(raw), None, MAX).mem_total_kb
    }
    fn response(raw: &[u8]) -> Option<f64> {
        parse_report(None, None, Some(raw), MAX).response_ms
    }

    #[test]
    fn a_counter_that_stops_changing_makes_the_values_stale_until_it_moves() {
        const S: u64 = 1_000_000_000;
        let mut h = Heartbeat::default();
        assert_eq!(h.observe(3, None, None, 0), Freshness::NoCounter);
        assert_eq!(h.observe(3, Some(b"1"), None, 0), Freshness::Fresh);
        assert_eq!(h.observe(3, Some(b"2"), None, S), Freshness::Fresh);
        // Five periods of 1 s (the default) without a change: still fresh
        // at 5 s, stale after.
        assert_eq!(h.observe(3, Some(b"2"), None, 6 * S), Freshness::Fresh);
        assert_eq!(h.observe(3, Some(b"2"), None, 6 * S + 1), Freshness::Stale);
        assert_eq!(h.observe(3, Some(b"3"), None, 7 * S), Freshness::Fresh);
        // A slow agent says so: a 10 s period allows 50 s.
        assert_eq!(
            h.observe(3, Some(b"3"), Some(b"10000"), 50 * S),
            Freshness::Fresh
        );
        assert_eq!(
            h.observe(3, Some(b"3"), Some(b"10000"), 58 * S),
            Freshness::Stale
        );
        // A guest that stops publishing a counter is taken as it is again.
        assert_eq!(h.observe(3, None, None, 60 * S), Freshness::NoCounter);
    }

    #[test]
    fn a_frozen_agent_reports_nothing_but_that_it_is_stale() {
        const S: u64 = 1_000_000_000;
        let published = Published {
            free: Some(b"1024".to_vec()),
            total: Some(b"65536".to_vec()),
            response: Some(b"2000".to_vec()),
            seq: Some(b"7".to_vec()),
            period_ms: None,
        };
        let mut h = Heartbeat::default();
        let fresh = published.report(&mut h, 3, MAX, S);
        assert_eq!((fresh.mem_free_kb, fresh.stale), (Some(1024), false));
        let frozen = published.report(&mut h, 3, MAX, 10 * S);
        assert_eq!(
            frozen,
            GuestReport {
                stale: true,
                ..GuestReport::default()
            }
        );
    }

    #[test]
    fn plain_decimal_values_are_read() {
        let report = parse_report(Some(b"1234"), Some(b"65536"), Some(b"856.33"), MAX);
        assert_eq!(report.mem_free_kb, Some(1234));
        assert_eq!(report.mem_total_kb, Some(65536));
        assert_eq!(report.response_ms, Some(856.33));
        assert_eq!(response(b"12"), Some(12.0));
    }

    #[test]
    fn surrounding_whitespace_and_trailing_nul_are_tolerated() {
        assert_eq!(total(b"  65536\n"), Some(65536));
        assert_eq!(total(b"65536\0"), Some(65536));
        assert_eq!(total(b"\t65536 \0\0"), Some(65536));
        assert_eq!(response(b" 11.5\n\0"), Some(11.5));
    }

    #[test]
    fn missing_values_stay_missing() {
        assert_eq!(parse_report(None, None, None, MAX), GuestReport::default());
    }

    #[test]
    fn garbage_integers_are_rejected() {
        let garbage: [&[u8]; 14] = [
            b"",
            b"   ",
            b"\0",
            b"-5",
            b"+5",
            b"1e9",
            b"0x10",
            b"NaN",
            b"inf",
            b"12.5",
            b"1 2",
            b"12kB",
            b"\xff\xfe",
            b"\x31\x32\x80",
        ];
        for raw in garbage {
            assert_eq!(free(raw), None, "free {raw:?}");
            assert_eq!(total(raw), None, "total {raw:?}");
        }
    }

    #[test]
    fn garbage_response_times_are_rejected() {
        let garbage: [&[u8]; 15] = [
            b"",
            b"-5",
            b"+5",
            b"1e9",
            b"1.5e3",
            b"0x10",
            b"NaN",
            b"nan",
            b"inf",
            b"Infinity",
            b".5",
            b"5.",
            b"1.2.3",
            b"1,5",
            b"\xc3\xa9",
        ];
        for raw in garbage {
            assert_eq!(response(raw), None, "response {raw:?}");
        }
    }

    #[test]
    fn overlong_values_are_rejected() {
        let long = vec![b'1'; 200];
        assert_eq!(total(&long), None);
        assert_eq!(response(&long), None);
        // 33 digits with leading zeros would fit in u64 but is over the limit.
        let mut padded = vec![b'0'; 32];
        padded.push(b'7');
        assert_eq!(total(&padded), None);
        assert_eq!(total(&padded[1..]), Some(7));
    }

    #[test]
    fn values_beyond_u64_are_rejected() {
        assert_eq!(total(b"18446744073709551615"), Some(MAX)); // u64::MAX, clamped
        assert_eq!(total(b"18446744073709551616"), None);
    }

    #[test]
    fn total_is_clamped_to_the_domain_maximum() {
        assert_eq!(total(b"99999999"), Some(MAX));
    }

    #[test]
    fn free_is_clamped_to_total() {
        let report = parse_report(Some(b"5000"), Some(b"4000"), None, MAX);
        assert_eq!(report.mem_total_kb, Some(4000));
        assert_eq!(report.mem_free_kb, Some(4000));
    }

    #[test]
    fn free_without_total_is_clamped_to_the_domain_maximum() {
        assert_eq!(free(b"99999999"), Some(MAX));
    }

    #[test]
    fn a_response_above_one_hour_is_dropped_not_clamped() {
        assert_eq!(response(b"99999999999.5"), None);
        assert_eq!(response(b"3600000.1"), None);
        assert_eq!(response(b"3599999.9"), Some(3_599_999.9));
    }

    #[test]
    fn one_bad_field_does_not_spoil_the_others() {
        let report = parse_report(Some(b"-1"), Some(b"4000"), Some(b"NaN"), MAX);
        assert_eq!(report.mem_free_kb, None);
        assert_eq!(report.mem_total_kb, Some(4000));
        assert_eq!(report.response_ms, None);
    }
}

#[cfg(test)]
mod ceiling_tests {
    use super::*;

    #[test]
    fn the_ceiling_is_static_max_not_xens_enforced_maximum() {
        // xl create memory=128 maxmem=256: Xen's maximum is the target
        // + 1 MiB (132096 kB), static-max 262144 kB.
        let host = 24 << 20;
        assert_eq!(memory_ceiling_kb(Some(b"262144"), 132_096, host), 262_144);
        assert_eq!(memory_ceiling_kb(Some(b"262144\n"), 132_096, host), 262_144);
        // Absent, garbage, zero or larger than the host: Xen's maximum.
        for bad in [
            None,
            Some(&b"lots"[..]),
            Some(b"0"),
            Some(b"-1"),
            Some(b"99999999999"),
        ] {
            assert_eq!(memory_ceiling_kb(bad, 132_096, host), 132_096, "{bad:?}");
        }
    }
}
