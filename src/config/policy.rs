//! Policy files: which domains rex manages and how, in xl cfg syntax.
//!
//! ```text
//! interval = 1000                  # ms between ticks
//! dom0_cpu = 0                     # % of one pCPU kept for dom0 on the guests' pCPUs
//! reserve_cpu = 0                  # % of one pCPU never handed out
//! reserve_memory = "64M"          # host memory never handed out (on top of the slush)
//! slush = "32M"                    # host free memory never to go below
//! mem_pressure = 10                # a guest with less free (% of MemTotal)...
//! mem_pressure_min = "16M"         # ...or less than this is grown
//! sla_target = 85                  # % of each SLA rex aims for (10..=100)
//! balloon_timeout = 20000          # ms a balloon has to halve its gap to its target
//! headroom = 1                     # 0: leave the free pool unallocated
//! domains = [ "name=vm2,sla_ms=900,cap_min=20,cap_max=80,mem_min=64M,mem_max=128M" ]
//! decomposition = [ "domain=vm2,load=40,cap=20,memory=64M" ]
//! ```
//!
//! A domain's guaranteed level is, in order: `cap=`/`memory=` in its own
//! spec, else the decomposition row for its `load=`, else its floors.

use std::collections::HashMap;
use std::path::Path;

use super::spec::Spec;
use super::ConfigError;
use crate::engine::limits::{CAP_LIMIT, WEIGHT_RANGE};
use crate::engine::policy::{domain_problems, host_problems};
use crate::engine::{
    Culprit, DecompTable, DomainPolicy, HostPolicy, KiB, Level, PolicyConfig, PolicyError,
};
use crate::xl::cfg::XluConfig;

/// Top-level keys of a policy file.
pub const POLICY_KEYS: &[&str] = &[
    "interval",
    "dom0_cpu",
    "reserve_cpu",
    "reserve_memory",
    "slush",
    "saturation",
    "idle",
    "deadband_cap",
    "deadband_memory",
    "max_step_cap",
    "max_step_memory",
    "cooldown",
    "balloon_timeout",
    "smoothing",
    "mem_pressure",
    "mem_pressure_min",
    "sla_target",
    "headroom",
    "domains",
    "decomposition",
];

/// Keys of a `domains` entry.
pub const DOMAIN_KEYS: &[&str] = &[
    "name", "sla_ms", "cap", "memory", "cap_min", "cap_max", "mem_min", "mem_max", "weight",
    "priority", "load", "force",
];

/// Keys of a `decomposition` row.
pub const ROW_KEYS: &[&str] = &["domain", "load", "cap", "memory", "sla_ms"];

/// Smallest memory bound rex takes without `force`, kB.
const MIN_MEMORY_BOUND_KB: KiB = 16 * 1024;

/// Reads and parses a policy file.
pub fn load_policy(path: &Path) -> Result<PolicyConfig, ConfigError> {
    let mut cfg = XluConfig::read_file(path)?;
    check_keys(&cfg, POLICY_KEYS)?;
    parse_policy(&mut cfg)
}

/// A policy that does not fit the host, as a configuration error naming
/// the file and line of what each problem is about (a host-wide key's line,
/// a domain's item, the `domains` key for sums over the domains), reread
/// from `path` (which `config` was read from). Where the file can no longer
/// be read, the problems are named at the file alone.
pub fn locate_misfits(path: &Path, config: &PolicyConfig, error: &PolicyError) -> ConfigError {
    let cfg = XluConfig::read_file(path).ok();
    let file = path.display().to_string();
    let locate = |about: &Culprit| -> String {
        let Some(cfg) = &cfg else {
            return file.clone();
        };
        match about {
            Culprit::Key(key) => cfg.location(key),
            Culprit::Domain(name) => match config.domains.iter().position(|d| &d.name == name) {
                Some(i) => cfg.list_item_location("domains", i),
                None => cfg.location("domains"),
            },
            Culprit::Domains => cfg.location("domains"),
        }
    };
    let mut misfits = error.misfits.iter();
    let Some(first) = misfits.next() else {
        return ConfigError::new(file, "the policy cannot be applied on this host");
    };
    let mut message = first.message.clone();
    for misfit in misfits {
        message.push_str(&format!("; {}: {}", locate(&misfit.about), misfit.message));
    }
    ConfigError::new(locate(&first.about), message)
}

/// Parses a policy from already-parsed xl cfg text (also used by scenarios,
/// which embed the policy keys).
pub fn parse_policy(cfg: &mut XluConfig) -> Result<PolicyConfig, ConfigError> {
    let host = parse_host_policy(cfg)?;
    let tables = parse_decomposition(cfg)?;
    let mut domains = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, text) in cfg.list("domains")?.unwrap_or_default().iter().enumerate() {
        let spec = Spec::parse_with_flags(
            cfg.list_item_location("domains", i),
            text,
            DOMAIN_KEYS,
            &["force"],
        )?;
        let domain = parse_domain(&spec, &tables)?;
        if !names.insert(domain.name.clone()) {
            return Err(ConfigError::new(
                spec.location,
                format!("domain `{}' listed twice", domain.name),
            ));
        }
        domains.push(domain);
    }
    for (name, table) in &tables {
        if !domains.iter().any(|d| &d.name == name) {
            return Err(ConfigError::new(
                cfg.location("decomposition"),
                format!("decomposition rows for `{name}', which is not in `domains'"),
            ));
        }
        debug_assert!(!table.rows.is_empty());
    }
    Ok(PolicyConfig { host, domains })
}

/// Rejects top-level keys that are not in `known`, naming file:line.
pub fn check_keys(cfg: &XluConfig, known: &[&str]) -> Result<(), ConfigError> {
    for (key, line) in cfg.keys() {
        if !known.contains(&key) {
            return Err(ConfigError::new(
                format!("{}:{line}", cfg.filename()),
                format!("unknown key `{key}'"),
            ));
        }
    }
    Ok(())
}

/// A whole number in `range`, from `key = 5` or `key = "5"`.
pub fn number_in(
    cfg: &mut XluConfig,
    key: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, ConfigError> {
    let Some(n) = cfg.long(key)? else {
        return Ok(None);
    };
    if !range.contains(&n) {
        return Err(ConfigError::new(
            cfg.location(key),
            format!(
                "`{key} = {n}': out of range {}..={}",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(Some(n))
}

/// A memory size, from `key = "64M"` or `key = 64` (MiB, as xl's `memory`).
pub fn size_kb(cfg: &mut XluConfig, key: &str) -> Result<Option<KiB>, ConfigError> {
    if let Ok(Some(n)) = cfg.long(key) {
        return u64::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(1024))
            .map(Some)
            .ok_or_else(|| ConfigError::new(cfg.location(key), format!("`{key}': bad size")));
    }
    let Some(text) = cfg.string(key)? else {
        return Ok(None);
    };
    super::parse_size_kb(&text).map(Some).ok_or_else(|| {
        ConfigError::new(
            cfg.location(key),
            format!("`{key} = \"{text}\"': not a memory size (e.g. 64M, 1G)"),
        )
    })
}

fn parse_host_policy(cfg: &mut XluConfig) -> Result<HostPolicy, ConfigError> {
    let mut host = HostPolicy::default();
    let cap_range = 0..=CAP_LIMIT as i64;
    if let Some(n) = number_in(cfg, "interval", 10..=3_600_000)? {
        host.interval_ms = n as u64;
    }
    if let Some(n) = number_in(cfg, "dom0_cpu", cap_range.clone())? {
        host.dom0_cpu_pct = n as u32;
    }
    if let Some(n) = number_in(cfg, "reserve_cpu", cap_range.clone())? {
        host.reserve_cpu_pct = n as u32;
    }
    if let Some(kb) = size_kb(cfg, "reserve_memory")? {
        host.reserve_mem_kb = kb;
    }
    if let Some(kb) = size_kb(cfg, "slush")? {
        host.slush_kb = kb;
    }
    if let Some(n) = number_in(cfg, "saturation", 1..=100)? {
        host.saturation_pct = n as f64;
    }
    if let Some(n) = number_in(cfg, "idle", 0..=100)? {
        host.idle_pct = n as f64;
    }
    if let Some(n) = number_in(cfg, "deadband_cap", 0..=100)? {
        host.deadband_cap = n as u32;
    }
    if let Some(kb) = size_kb(cfg, "deadband_memory")? {
        host.deadband_mem_kb = kb;
    }
    if let Some(n) = number_in(cfg, "max_step_cap", 1..=CAP_LIMIT as i64)? {
        host.max_step_cap = n as u32;
    }
    if let Some(kb) = size_kb(cfg, "max_step_memory")? {
        host.max_step_mem_kb = kb.max(1);
    }
    if let Some(n) = number_in(cfg, "cooldown", 0..=1000)? {
        host.cooldown_ticks = n as u32;
    }
    if let Some(n) = number_in(cfg, "balloon_timeout", 1000..=3_600_000)? {
        host.balloon_timeout_ms = n as u64;
    }
    // Percentages, since xl's syntax has no fractions: 50 means 0.5.
    if let Some(n) = number_in(cfg, "smoothing", 1..=100)? {
        host.smoothing = n as f64 / 100.0;
    }
    if let Some(n) = number_in(cfg, "mem_pressure", 0..=100)? {
        host.mem_pressure_free_pct = n as f64;
    }
    if let Some(kb) = size_kb(cfg, "mem_pressure_min")? {
        host.mem_pressure_free_kb = kb;
    }
    if let Some(n) = number_in(cfg, "sla_target", 10..=100)? {
        host.sla_target_pct = n as f64;
    }
    if let Some(n) = number_in(cfg, "headroom", 0..=1)? {
        host.headroom = n == 1;
    }
    // The engine owns the rules; the file says where the knob is.
    match host_problems(&host).into_iter().next() {
        Some(problem) => {
            let knob = problem.split_whitespace().next().unwrap_or_default();
            Err(ConfigError::new(cfg.location(knob), problem))
        }
        None => Ok(host),
    }
}

fn parse_decomposition(cfg: &mut XluConfig) -> Result<HashMap<String, DecompTable>, ConfigError> {
    let mut tables: HashMap<String, DecompTable> = HashMap::new();
    for (i, text) in cfg
        .list("decomposition")?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let spec = Spec::parse(cfg.list_item_location("decomposition", i), text, ROW_KEYS)?;
        let name = spec.required_str("domain")?.to_string();
        let load = spec
            .u32_in("load", 0..=u32::MAX)?
            .ok_or_else(|| ConfigError::new(&spec.location, "`load=' is required"))?;
        let cap_pct = spec
            .u32_in("cap", 1..=CAP_LIMIT)?
            .ok_or_else(|| ConfigError::new(&spec.location, "`cap=' is required"))?;
        let mem_kb = spec
            .size_kb("memory")?
            .ok_or_else(|| ConfigError::new(&spec.location, "`memory=' is required"))?;
        let table = tables.entry(name).or_default();
        if let Some(sla) = spec.f64_in("sla_ms", 0.001..=3_600_000.0)? {
            table.sla_ms = sla;
        }
        if table.rows.iter().any(|r| r.load == load) {
            return Err(ConfigError::new(
                spec.location,
                format!("a second row for load {load}"),
            ));
        }
        table.rows.push(Level {
            load,
            cap_pct,
            mem_kb,
        });
        table.rows.sort_by_key(|r| r.load);
    }
    Ok(tables)
}

fn parse_domain(
    spec: &Spec,
    tables: &HashMap<String, DecompTable>,
) -> Result<DomainPolicy, ConfigError> {
    let err = |m: String| ConfigError::new(spec.location.clone(), m);
    let name = spec.required_str("name")?.to_string();
    let cap_min = spec.u32_in("cap_min", 1..=CAP_LIMIT)?.unwrap_or(1);
    let cap_max = spec.u32_in("cap_max", 1..=CAP_LIMIT)?.unwrap_or(100);
    let mem_min_kb = spec.size_kb("mem_min")?.unwrap_or(0);
    let mem_max_kb = spec.size_kb("mem_max")?.unwrap_or(u64::MAX / 2);
    // `mem_max=128K` for 128M would balloon a guest to nothing.
    for key in ["mem_min", "mem_max", "memory"] {
        if let Some(kb) = spec.size_kb(key)? {
            if kb < MIN_MEMORY_BOUND_KB && !spec.has_flag("force") {
                return Err(err(format!(
                    "`{key}={}': below {} MiB, no guest runs in that; add `force' to \
                     the domain if it is meant",
                    spec.str(key).unwrap_or_default(),
                    MIN_MEMORY_BOUND_KB / 1024
                )));
            }
        }
    }
    let load = spec.u32_in("load", 0..=u32::MAX)?;
    let table_level = match (load, tables.get(&name)) {
        (Some(load), Some(table)) => table.level_for(load),
        (Some(_), None) => {
            return Err(err(format!(
                "`load=' given but no decomposition rows for `{name}'"
            )))
        }
        (None, _) => None,
    };
    let sla_from_table = tables.get(&name).map(|t| t.sla_ms).filter(|s| *s > 0.0);
    let level = Level {
        load: load.unwrap_or(0),
        cap_pct: spec
            .u32_in("cap", 1..=CAP_LIMIT)?
            .or(table_level.map(|l| l.cap_pct))
            .unwrap_or(cap_min),
        mem_kb: spec
            .size_kb("memory")?
            .or(table_level.map(|l| l.mem_kb))
            .unwrap_or(mem_min_kb),
    };
    let policy = DomainPolicy {
        name,
        sla_ms: spec
            .f64_in("sla_ms", 0.001..=3_600_000.0)?
            .or(sla_from_table),
        level,
        cap_min,
        cap_max,
        mem_min_kb,
        mem_max_kb,
        weight: spec.u32_in("weight", WEIGHT_RANGE)?.unwrap_or(256),
        priority: spec.u32_in("priority", 0..=1000)?.unwrap_or(0),
    };
    // The engine owns the rules; the file says where the domain is.
    match domain_problems(&policy).into_iter().next() {
        Some(problem) => Err(err(problem)),
        None => Ok(policy),
    }
}

/// Parses policy text (for tests and `rex_xl_main` callers with inline text).
pub fn parse_policy_text(filename: &str, text: &str) -> Result<PolicyConfig, ConfigError> {
    let mut cfg = XluConfig::parse(filename, text)?;
    check_keys(&cfg, POLICY_KEYS)?;
    parse_policy(&mut cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
interval = 500
reserve_memory = "64M"
slush = 16
domains = [ "name=vm1,cap_min=10,cap_max=40,mem_min=64M,mem_max=128M",
            "name=vm2,sla_ms=900,cap_min=20,cap_max=80,mem_min=64M,mem_max=128M,load=80,priority=2" ]
decomposition = [ "domain=vm2,load=40,cap=20,memory=64M",
                  "domain=vm2,load=80,cap=40,memory=96M" ]
"#;

    #[test]
    fn parses_a_policy() {
        let p = parse_policy_text("rex.cfg", GOOD).unwrap();
        assert_eq!(p.host.interval_ms, 500);
        assert_eq!(p.host.reserve_mem_kb, 65536);
        assert_eq!(p.host.slush_kb, 16 * 1024);
        let vm1 = p.domain("vm1").unwrap();
        assert_eq!(vm1.level.cap_pct, 10, "level defaults to the floors");
        assert_eq!(vm1.sla_ms, None);
        let vm2 = p.domain("vm2").unwrap();
        assert_eq!(
            vm2.level.cap_pct, 40,
            "level taken from the decomposition row"
        );
        assert_eq!(vm2.level.mem_kb, 96 * 1024);
        assert_eq!(vm2.sla_ms, Some(900.0));
        assert_eq!(vm2.priority, 2);
    }

    fn error_of(text: &str) -> ConfigError {
        parse_policy_text("p.cfg", text).unwrap_err()
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = error_of("interval = 100\ncolour = 1\n");
        assert_eq!(e.location, "p.cfg:2");
        assert!(e.message.contains("colour"));

        let e = error_of("domains = [\n \"name=a\",\n \"name=b,cap_min=50,cap_max=10\" ]\n");
        assert_eq!(e.location, "p.cfg:3", "{e}");
        assert!(e.message.contains("cap_min"), "{e}");

        let e = error_of("interval = 5\n");
        assert_eq!(e.location, "p.cfg:1");

        let e = error_of("domains = [ \"name=a\", \"name=a\" ]\n");
        assert!(e.message.contains("twice"), "{e}");

        let e = error_of("slush = \"lots\"\n");
        assert!(e.message.contains("memory size"), "{e}");

        let e = error_of("domains = [ \"name=a,load=3\" ]\n");
        assert!(e.message.contains("decomposition"), "{e}");
    }

    #[test]
    fn a_knob_breaking_the_engines_rules_is_refused_at_its_line() {
        let e = error_of("interval = 1000\nsaturation = 40\n\nidle = 50\n");
        assert_eq!(e.location, "p.cfg:4", "{e}");
        assert_eq!(e.message, "idle 50% must be below saturation 40%");
    }

    /// A domain's rules are the engine's (one owner), reported at the
    /// domain's line in the engine's words.
    #[test]
    fn a_domain_breaking_the_engines_rules_is_refused_at_its_line() {
        let cases = [
            (
                "name=b,cap_min=50,cap_max=10",
                "cap_min 50 is above cap_max 10",
            ),
            (
                "name=b,mem_min=256M,mem_max=128M",
                "mem_min 256M is above mem_max 128M",
            ),
            (
                "name=b,cap=90,cap_max=80",
                "level cap 90 is outside [cap_min 1, cap_max 80]",
            ),
            (
                "name=b,memory=64M,mem_min=128M,mem_max=256M",
                "level memory 64M is outside [mem_min 128M, mem_max 256M]",
            ),
        ];
        for (domain, problem) in cases {
            let e = error_of(&format!("domains = [\n \"name=a\",\n \"{domain}\" ]\n"));
            assert_eq!(e.location, "p.cfg:3", "{domain}: {e}");
            assert_eq!(e.message, format!("domain `b': {problem}"), "{domain}");
        }
    }

    #[test]
    fn misspelt_repeated_bare_and_odd_keys_are_refused_with_their_line() {
        let cases = [
            (
                "interval = 1000; intervall = 50\n",
                "p.cfg:1",
                "unknown key `intervall'",
            ),
            (
                "slush = \"a [ b\"\nintervall = 50\n",
                "p.cfg:2",
                "unknown key `intervall'",
            ),
            (
                "interval = 5\nintervall += 50\n",
                "p.cfg:2",
                "unknown key `intervall'",
            ),
            (
                "interval = 100\ninterval = 200\n",
                "p.cfg:2",
                "set twice (first on line 1)",
            ),
            (
                "interval = -1\n",
                "p.cfg:1",
                "negative numbers are not accepted",
            ),
            ("cooldown = 0100\n", "p.cfg:1", "read it as octal"),
            (
                "domains = [ \"name=a,cap_max\" ]\n",
                "p.cfg:1",
                "`cap_max' needs a value",
            ),
        ];
        for (text, location, message) in cases {
            let e = error_of(text);
            assert_eq!(e.location, location, "{text:?}: {e}");
            assert!(e.message.contains(message), "{text:?}: {e}");
        }
        // mem_max=128K meant as 128M is refused; a tiny bound that is meant
        // says so.
        let e = error_of("domains = [ \"name=a,mem_max=128K\" ]\n");
        assert_eq!(e.location, "p.cfg:1");
        assert_eq!(
            e.message,
            "`mem_max=128K': below 16 MiB, no guest runs in that; add `force' to the domain if \
             it is meant"
        );
        let p = parse_policy_text(
            "p.cfg",
            "domains = [ \"name=a,mem_min=4M,mem_max=8M,force\" ]\n",
        );
        assert_eq!(p.unwrap().domain("a").unwrap().mem_max_kb, 8 * 1024);
        // Lists may be added to, as in xl's own configs.
        let p = parse_policy_text(
            "p.cfg",
            "domains = [ \"name=a\" ]\ndomains += [ \"name=b\",\n \"name=c,cap_min=500\" ]\n",
        );
        assert_eq!(p.unwrap_err().location, "p.cfg:3");
    }

    #[test]
    fn syntax_error_is_reported_with_line() {
        let e = error_of("interval = 100\ndomains = [ \"name=a\" \n");
        assert!(e.to_string().starts_with("p.cfg:"), "{e}");
    }
}
