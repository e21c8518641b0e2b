//! The `key=value,key=value` strings inside config lists, in the style of
//! xl's `vif = [ "bridge=xenbr0,mac=…" ]`, and the value forms they use.

use std::collections::BTreeMap;

use super::ConfigError;
use crate::engine::KiB;

/// One parsed list item: its keys and where it was written.
#[derive(Debug, Clone)]
pub struct Spec {
    pub location: String,
    fields: BTreeMap<String, String>,
    /// Flags written without `=value`, e.g. `destroy`.
    flags: Vec<String>,
}

/// `text` as an error message shows it: whole when short, else its start
/// and its length (a 100 MB value is not echoed back).
pub fn shown(text: &str) -> String {
    const MAX: usize = 64;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len())
}

impl Spec {
    /// Parses `text`; every key must be in `allowed`, with a value.
    pub fn parse(location: String, text: &str, allowed: &[&str]) -> Result<Self, ConfigError> {
        Self::parse_with_flags(location, text, allowed, &[])
    }

    /// Parses `text`; every key must be in `allowed`, with a value unless it
    /// is one of `flags` (written alone, e.g. `destroy`).
    pub fn parse_with_flags(
        location: String,
        text: &str,
        allowed: &[&str],
        flag_keys: &[&str],
    ) -> Result<Self, ConfigError> {
        let mut fields = BTreeMap::new();
        let mut flags = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = match part.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (part, None),
            };
            if !allowed.contains(&key) {
                return Err(ConfigError::new(
                    location,
                    format!(
                        "unknown key `{}' in \"{}\" (known: {})",
                        shown(key),
                        shown(text),
                        allowed.join(", ")
                    ),
                ));
            }
            match value {
                Some(v) => {
                    if fields.insert(key.to_string(), v.to_string()).is_some() {
                        return Err(ConfigError::new(location, format!("`{key}' given twice")));
                    }
                }
                None if flag_keys.contains(&key) => flags.push(key.to_string()),
                // A key alone would silently mean its default.
                None => {
                    return Err(ConfigError::new(
                        location,
                        format!("`{key}' needs a value (`{key}=...')"),
                    ))
                }
            }
        }
        Ok(Self {
            location,
            fields,
            flags,
        })
    }

    pub fn has_flag(&self, key: &str) -> bool {
        self.flags.iter().any(|f| f == key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    fn error(&self, message: String) -> ConfigError {
        ConfigError::new(self.location.clone(), message)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    pub fn required_str(&self, key: &str) -> Result<&str, ConfigError> {
        self.str(key)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.error(format!("`{key}=' is required")))
    }

    /// A value of `key` parsed by `parse` (None: "not {what}") and checked
    /// against `range`.
    fn value_in<T: PartialOrd + std::fmt::Display>(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<T>,
        what: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(v) = self.str(key) else {
            return Ok(None);
        };
        let shown_v = shown(v);
        let n = parse(v).ok_or_else(|| self.error(format!("`{key}={shown_v}': not {what}")))?;
        if !range.contains(&n) {
            return Err(self.error(format!(
                "`{key}={shown_v}': out of range {}..={}",
                range.start(),
                range.end()
            )));
        }
        Ok(Some(n))
    }

    /// An unsigned integer within `range`.
    pub fn u64_in(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Option<u64>, ConfigError> {
        self.value_in(key, range, "a whole number", |v| v.parse().ok())
    }

    pub fn u32_in(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<u32>,
    ) -> Result<Option<u32>, ConfigError> {
        self.value_in(key, range, "a whole number", |v| v.parse().ok())
    }

    /// A finite non-negative decimal within `range`.
    pub fn f64_in(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<f64>,
    ) -> Result<Option<f64>, ConfigError> {
        self.value_in(key, range, "a number", |v| {
            v.parse().ok().filter(|n: &f64| n.is_finite())
        })
    }

    /// A memory size (`64M`, `1G`, `65536K`; a bare number is MiB, as in
    /// xl's `memory =`).
    pub fn size_kb(&self, key: &str) -> Result<Option<KiB>, ConfigError> {
        let Some(v) = self.str(key) else {
            return Ok(None);
        };
        parse_size_kb(v).map(Some).ok_or_else(|| {
            self.error(format!(
                "`{key}={}': not a memory size (e.g. 64M, 1G)",
                shown(v)
            ))
        })
    }
}

/// Parses `64M`, `1G`, `512K`, `2T` or a bare number of MiB into KiB.
pub fn parse_size_kb(text: &str) -> Option<KiB> {
    let text = text.trim();
    let (digits, unit_kb): (&str, u64) = match text.char_indices().last()? {
        (i, 'K' | 'k') => (&text[..i], 1),
        (i, 'M' | 'm') => (&text[..i], 1024),
        (i, 'G' | 'g') => (&text[..i], 1024 * 1024),
        (i, 'T' | 't') => (&text[..i], 1024 * 1024 * 1024),
        _ => (text, 1024),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(unit_kb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size_kb("64M"), Some(65536));
        assert_eq!(parse_size_kb("64"), Some(65536));
        assert_eq!(parse_size_kb("1G"), Some(1048576));
        assert_eq!(parse_size_kb("512k"), Some(512));
        assert_eq!(parse_size_kb("-1M"), None);
        assert_eq!(parse_size_kb("M"), None);
        assert_eq!(parse_size_kb("1.5G"), None);
        assert_eq!(parse_size_kb("99999999999999999999T"), None);
    }

    #[test]
    fn spec_rejects_unknown_and_duplicate_keys() {
        let err = Spec::parse("f:3".into(), "name=a,colour=red", &["name"]).unwrap_err();
        assert_eq!(err.location, "f:3");
        assert!(err.message.contains("colour"));
        let err = Spec::parse("f:3".into(), "name=a,cap_max", &["name", "cap_max"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "f:3: `cap_max' needs a value (`cap_max=...')"
        );
        let flags = Spec::parse_with_flags(
            "f:3".into(),
            "vm=a,destroy",
            &["vm", "destroy"],
            &["destroy"],
        );
        assert!(flags.unwrap().has_flag("destroy"));
        let huge = format!("cap={}", "9".repeat(100_000));
        let err = Spec::parse("f:3".into(), &huge, &["cap"])
            .unwrap()
            .u32_in("cap", 0..=100)
            .unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
        assert!(
            err.to_string()
                .ends_with("... (100000 bytes)': not a whole number"),
            "{err}"
        );
        let err = Spec::parse("f:3".into(), "name=a,name=b", &["name"]).unwrap_err();
        assert!(err.message.contains("twice"));
    }

    #[test]
    fn spec_ranges() {
        let s = Spec::parse("f:1".into(), "cap=500,w=abc", &["cap", "w"]).unwrap();
        assert!(s.u32_in("cap", 1..=400).is_err());
        assert!(s.u32_in("w", 1..=400).is_err());
        assert_eq!(s.u32_in("absent", 1..=4).unwrap(), None);
    }
}
