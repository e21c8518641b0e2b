//! `rex sla --persist`: the change written back to the policy file as a
//! line edit of the domain's entry in `domains = [ ... ]`, so comments and
//! layout stay. The edited text is parsed again before it replaces the
//! file: if the file would not give the domain the new values (another
//! entry or a decomposition table decides them), nothing is written.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::protocol::SlaChange;
use crate::config::policy::parse_policy_text;
use crate::input::read_text_file;

/// Writes `change` for `domain` into the policy file at `path`.
pub fn persist(path: &Path, domain: &str, change: SlaChange) -> Result<(), String> {
    let shown = path.display().to_string();
    let text = read_text_file(path)?;
    let before = parse_policy_text(&shown, &text).map_err(|e| e.to_string())?;
    let mut expected = before
        .domain(domain)
        .cloned()
        .ok_or_else(|| format!("{shown}: no entry for domain `{domain}'"))?;
    change.apply(&mut expected)?;
    let edited = edit(&text, domain, change).map_err(|e| format!("{shown}: {e}"))?;
    let after = parse_policy_text(&shown, &edited)
        .map_err(|e| format!("{shown}: the edited file would not parse ({e}); not written"))?;
    if after.domain(domain) != Some(&expected) {
        return Err(format!(
            "{shown}: the edited file would not give `{domain}' the new values (a \
             decomposition table decides them?); not written"
        ));
    }
    write_beside(path, &edited).map_err(|e| format!("{shown}: {e}"))
}

/// The text with the one quoted entry holding `name=DOMAIN` edited.
fn edit(text: &str, domain: &str, change: SlaChange) -> Result<String, String> {
    let entries = quoted_strings(text);
    let mine: Vec<&(usize, usize)> = entries
        .iter()
        .filter(|&&(start, end)| {
            text[start..end]
                .split(',')
                .any(|part| part.trim() == format!("name={domain}"))
        })
        .collect();
    let &(start, end) = match mine.as_slice() {
        [one] => *one,
        [] => return Err(format!("no entry with `name={domain}'")),
        _ => return Err(format!("more than one entry with `name={domain}'")),
    };
    let mut parts: Vec<String> = text[start..end]
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let mut set = |key: &str, value: Option<String>| {
        let at = parts
            .iter()
            .position(|p| p.split('=').next().map(str::trim) == Some(key));
        match (at, value) {
            (Some(i), Some(v)) => parts[i] = format!("{key}={v}"),
            (None, Some(v)) => parts.push(format!("{key}={v}")),
            (Some(i), None) => {
                parts.remove(i);
            }
            (None, None) => {}
        }
    };
    if let Some(sla) = change.sla_ms {
        set("sla_ms", sla.map(|ms| ms.to_string()));
    }
    if let Some(cap) = change.cap_pct {
        set("cap", Some(cap.to_string()));
    }
    if let Some(kb) = change.mem_kb {
        let size = if kb % 1024 == 0 {
            format!("{}M", kb / 1024)
        } else {
            format!("{kb}K")
        };
        set("memory", Some(size));
    }
    Ok(format!(
        "{}{}{}",
        &text[..start],
        parts.join(","),
        &text[end..]
    ))
}

/// Byte ranges of the contents of every quoted string outside comments.
fn quoted_strings(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut quote: Option<(u8, usize)> = None;
    let mut comment = false;
    for (i, &b) in text.as_bytes().iter().enumerate() {
        match (quote, b) {
            (None, b'\n') => comment = false,
            _ if comment => {}
            (None, b'#') => comment = true,
            (None, b'"' | b'\'') => quote = Some((b, i + 1)),
            (Some((q, start)), _) if b == q => {
                out.push((start, i));
                quote = None;
            }
            _ => {}
        }
    }
    out
}

/// Replaces `path` with `text`, keeping its mode.
fn write_beside(path: &Path, text: &str) -> std::io::Result<()> {
    let mode = fs::metadata(path)?.permissions().mode();
    crate::daemon::metrics::replace_file(path, text.as_bytes(), Some(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# the lab's hosts\ninterval = 1000\ndomains = [\n    # the web tier\n    \"name=vm1,cap=20,cap_min=10,cap_max=60\",\n    \"name=vm2, sla_ms=900 ,cap_min=10,cap_max=80\", # \"name=vm2\" was here\n]\n";

    fn temp(name: &str, text: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("rex-persist-{}-{name}", std::process::id()));
        fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn only_the_domains_entry_changes_and_comments_stay() {
        let path = temp("edit.cfg", FILE);
        persist(&path, "vm2", SlaChange::parse("sla_ms=600,cap=40").unwrap()).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            FILE.replace(
                "name=vm2, sla_ms=900 ,cap_min=10,cap_max=80",
                "name=vm2,sla_ms=600,cap_min=10,cap_max=80,cap=40"
            )
        );
        persist(&path, "vm2", SlaChange::parse("off,memory=256M").unwrap()).unwrap();
        let config = parse_policy_text("t", &fs::read_to_string(&path).unwrap()).unwrap();
        let vm2 = config.domain("vm2").unwrap();
        assert_eq!((vm2.sla_ms, vm2.level.mem_kb), (None, 256 * 1024));
        let _ = fs::remove_file(path);
    }

    #[test]
    fn a_change_the_file_cannot_carry_is_not_written() {
        let table = format!(
            "{FILE}decomposition = [ \"domain=vm2,load=1,cap=30,memory=64M,sla_ms=900\" ]\n"
        )
        .replace("sla_ms=900 ,", "load=1,");
        let path = temp("table.cfg", &table);
        let e = persist(&path, "vm2", SlaChange::parse("off").unwrap()).unwrap_err();
        assert!(e.contains("decomposition table"), "{e}");
        let e = persist(&path, "vm7", SlaChange::parse("cap=20").unwrap()).unwrap_err();
        assert!(e.contains("no entry for domain `vm7'"), "{e}");
        let e = persist(&path, "vm1", SlaChange::parse("cap=70").unwrap()).unwrap_err();
        assert!(e.contains("outside"), "{e}");
        assert_eq!(fs::read_to_string(&path).unwrap(), table, "unchanged");
        let _ = fs::remove_file(path);
    }
}
