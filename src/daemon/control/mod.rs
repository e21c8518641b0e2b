//! The control socket of a running daemon (`rex run` and `xl rex` alike):
//! `rex status` asks what it manages and why, `rex sla` gives a domain a
//! new SLA or level at run time (the paper's "new level when the SLA
//! changes"), `rex pause` / `rex resume` hold and release all changes.
//!
//! The socket (default [`client::DEFAULT_SOCKET`], mode 0600 in a 0700
//! directory) is also the daemon's lock: a second daemon on it refuses to
//! start. The protocol is in [`protocol`].

pub mod client;
pub mod persist;
pub mod protocol;
pub mod server;
pub mod status;

pub use server::{ControlError, ControlServer, Peer};
pub use status::Board;

use protocol::{Request, SlaChange};
use serde_json::json;

use crate::display::Display;
use crate::engine::Policy;
use crate::host::driver::Driver;
use crate::host::Host;

/// Who asked, for the audit line.
fn who(peer: Option<Peer>) -> String {
    match peer {
        Some(p) => format!("uid {} (pid {})", p.uid, p.pid),
        None => "an unknown peer".into(),
    }
}

fn who_json(peer: Option<Peer>) -> serde_json::Value {
    json!({"uid": peer.map(|p| p.uid), "pid": peer.map(|p| p.pid)})
}

/// Answers one request line against the running daemon. Changes are
/// audited on the daemon's output (who, what, from → to); a refused
/// request changes nothing.
pub fn serve<H: Host>(
    line: &[u8],
    peer: Option<Peer>,
    driver: &mut Driver<H>,
    board: &mut Board,
    display: &mut Display,
) -> String {
    let request = match Request::parse(line) {
        Ok(r) => r,
        Err(e) => return protocol::error(&e),
    };
    match request {
        Request::Status { json: true } => {
            protocol::ok(&board.json(driver.engine().config()).to_string())
        }
        Request::Status { json: false } => protocol::ok(&board.text(driver.engine().config())),
        Request::Pause => {
            if board.paused.is_none() {
                board.paused = Some(format!("by {}", who(peer)));
                let text = format!("paused by {}: no changes until `rex resume'", who(peer));
                log::info!("{text}");
                display.event("paused", &text, who_json(peer));
            }
            protocol::ok("paused")
        }
        Request::Resume => {
            if board.paused.take().is_some() {
                let text = format!("resumed by {}", who(peer));
                log::info!("{text}");
                display.event("resumed", &text, who_json(peer));
            }
            protocol::ok("running")
        }
        Request::Sla { domain, change } => match set_sla(driver, &domain, change) {
            Ok(changes) if changes.is_empty() => {
                protocol::ok(&format!("{domain}: nothing to change"))
            }
            Ok(changes) => {
                let what = changes.join(", ");
                let text = format!(
                    "sla {domain}: {what} (by {}; from the next tick; a reload rereads the policy file)",
                    who(peer)
                );
                log::info!("{text}");
                let mut fields = who_json(peer);
                fields["domain"] = json!(domain);
                fields["changes"] = json!(changes);
                display.event("sla_changed", &text, fields);
                protocol::ok(&format!("{domain}: {what}; from the next tick"))
            }
            Err(e) => protocol::error(&e),
        },
    }
}

/// Applies `change` to `domain`'s policy if the whole policy still fits
/// the host; the changes made, or why none was.
fn set_sla<H: Host>(
    driver: &mut Driver<H>,
    domain: &str,
    change: SlaChange,
) -> Result<Vec<String>, String> {
    let mut config = driver.engine().config().clone();
    let Some(policy) = config.domains.iter_mut().find(|d| d.name == domain) else {
        let managed: Vec<&str> = config.domains.iter().map(|d| d.name.as_str()).collect();
        return Err(format!(
            "rex does not manage a domain `{}' (it manages: {})",
            crate::config::shown(domain),
            managed.join(", ")
        ));
    };
    let changes = change.apply(policy)?;
    if changes.is_empty() {
        return Ok(changes);
    }
    let info = driver
        .host_mut()
        .host_info()
        .map_err(|e| format!("cannot read the host to check the change: {e}"))?;
    Policy::validate(&config, &info).map_err(|e| e.to_string())?;
    driver.engine_mut().set_config(config);
    Ok(changes)
}

#[cfg(test)]
mod tests;
