//! `rex status`, `rex sla`, `rex pause`, `rex resume`: requests to a
//! running daemon (`rex run` or `xl rex`) over its control socket.

use std::path::PathBuf;
use std::process::ExitCode;

use rex::daemon::control::client::{self, DEFAULT_SOCKET};
use rex::daemon::control::persist::persist;
use rex::daemon::control::protocol::{Request, SlaChange};
use rex::error_chain;

/// The socket option every request takes.
#[derive(Debug, clap::Args)]
pub struct Socket {
    /// The daemon's control socket (its --control)
    #[arg(long = "control", value_name = "SOCKET", default_value = DEFAULT_SOCKET)]
    pub path: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// One JSON object instead of a table
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub socket: Socket,
}

#[derive(Debug, clap::Args)]
pub struct SlaArgs {
    /// The managed domain, by name as `xl list` shows it
    pub domain: String,
    /// What changes: sla_ms=MS, cap=PCT (the guaranteed level), memory=SIZE,
    /// or off (no SLA: best-effort); several may be given
    #[arg(required = true, value_name = "CHANGE")]
    pub change: Vec<String>,
    /// Also write the change into the daemon's policy file (a line edit of
    /// the domain's entry; comments and layout stay), so a reload keeps it
    #[arg(long)]
    pub persist: bool,
    #[command(flatten)]
    pub socket: Socket,
}

#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    #[command(flatten)]
    pub socket: Socket,
}

pub fn status(args: StatusArgs) -> ExitCode {
    send("status", &args.socket, Request::Status { json: args.json })
}

pub fn sla(args: SlaArgs) -> ExitCode {
    let change = match SlaChange::parse(&args.change.join(",")) {
        Ok(c) => c,
        Err(e) => {
            rex::eprintln_safe!("rex sla: {e}");
            return ExitCode::from(2);
        }
    };
    let request = Request::Sla {
        domain: args.domain.clone(),
        change,
    };
    let body = match ask("sla", &args.socket, request) {
        Ok(body) => body,
        Err(code) => return code,
    };
    rex::print_safe!("{body}");
    if !args.persist {
        return ExitCode::SUCCESS;
    }
    // The daemon took it (checked against the host); now the file.
    let policy = client::request(&args.socket.path, &Request::Status { json: true })
        .ok()
        .and_then(|body| serde_json::from_str::<serde_json::Value>(&body).ok())
        .and_then(|status| status["policy"].as_str().map(PathBuf::from));
    let Some(policy) = policy else {
        rex::eprintln_safe!(
            "rex sla: rex took the change, but did not say its policy file: not persisted"
        );
        return ExitCode::from(1);
    };
    match persist(&policy, &args.domain, change) {
        Ok(()) => {
            rex::print_safe!("written to {}\n", policy.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            rex::eprintln_safe!("rex sla: rex took the change, but the file is unchanged: {e}");
            ExitCode::from(1)
        }
    }
}

pub fn pause(args: PauseArgs) -> ExitCode {
    send("pause", &args.socket, Request::Pause)
}

pub fn resume(args: PauseArgs) -> ExitCode {
    send("resume", &args.socket, Request::Resume)
}

fn send(name: &str, socket: &Socket, request: Request) -> ExitCode {
    match ask(name, socket, request) {
        Ok(body) => {
            rex::print_safe!("{body}");
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// The daemon's answer, or the exit code after saying why there is none.
fn ask(name: &str, socket: &Socket, request: Request) -> Result<String, ExitCode> {
    client::request(&socket.path, &request).map_err(|e| {
        rex::eprintln_safe!("rex {name}: {}", error_chain(&e));
        ExitCode::from(e.status())
    })
}
