//! What the agent reads inside the guest: `/proc/meminfo`, and the response
//! time an application leaves in a file.

use std::io;

/// The two figures rex uses, kB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemInfo {
    pub total_kb: u64,
    pub available_kb: u64,
}

impl MemInfo {
    pub fn read() -> io::Result<Self> {
        let text = std::fs::read_to_string("/proc/meminfo")?;
        Self::parse(&text).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "no MemTotal or MemAvailable")
        })
    }

    /// MemTotal and MemAvailable (MemFree + Cached on kernels before 3.14,
    /// which lack MemAvailable).
    pub fn parse(text: &str) -> Option<Self> {
        let field = |name: &str| {
            text.lines().find_map(|line| {
                let rest = line.strip_prefix(name)?.strip_prefix(':')?;
                rest.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()
            })
        };
        let total_kb = field("MemTotal")?;
        let available_kb = field("MemAvailable")
            .or_else(|| Some(field("MemFree")? + field("Cached").unwrap_or(0)))?;
        Some(Self {
            total_kb,
            available_kb: available_kb.min(total_kb),
        })
    }

    /// Whether available memory moved by a tenth of the total, or 8 MiB,
    /// since `before`: worth publishing at once.
    pub fn moved_a_lot_since(&self, before: &MemInfo) -> bool {
        let threshold = (self.total_kb / 10).max(8 * 1024);
        self.available_kb.abs_diff(before.available_kb) >= threshold
    }
}

/// The response time in an application's file: one non-negative number of
/// ms (surrounding whitespace allowed), published as written. Anything else
/// publishes nothing.
pub fn response_ms(text: &str) -> Option<String> {
    let text = text.trim();
    let ms: f64 = text.parse().ok()?;
    (ms.is_finite()
        && ms >= 0.0
        && text.len() <= 32
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
    .then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN_PV_128M: &str = "MemTotal:          79360 kB\nMemFree:           52000 kB\n\
        MemAvailable:      61234 kB\nBuffers:            1024 kB\nCached:             9000 kB\n";

    #[test]
    fn reads_total_and_available() {
        assert_eq!(
            MemInfo::parse(DEBIAN_PV_128M),
            Some(MemInfo {
                total_kb: 79_360,
                available_kb: 61_234
            })
        );
        let old_kernel = "MemTotal: 1000 kB\nMemFree: 300 kB\nCached: 200 kB\n";
        assert_eq!(MemInfo::parse(old_kernel).unwrap().available_kb, 500);
        assert_eq!(MemInfo::parse("MemTotal: lots\n"), None);
    }

    #[test]
    fn a_large_move_is_published_at_once() {
        let before = MemInfo::parse(DEBIAN_PV_128M).unwrap();
        let small = MemInfo {
            available_kb: before.available_kb - 4096,
            ..before
        };
        let large = MemInfo {
            available_kb: before.available_kb - 9000,
            ..before
        };
        assert!(!small.moved_a_lot_since(&before));
        assert!(large.moved_a_lot_since(&before));
    }

    #[test]
    fn response_files_publish_plain_numbers_only() {
        assert_eq!(response_ms(" 412.5\n").as_deref(), Some("412.5"));
        for bad in ["", "-3", "1e9", "NaN", "inf", "12 ms"] {
            assert_eq!(response_ms(bad), None, "{bad:?}");
        }
    }
}
