//! `rex status`, `rex sla`, `rex pause`, `rex resume`: requests to a
//! running daemon (`rex run` or `xl rex`) over its control socket.

use std::path::PathBuf;
use std::process::ExitCode;

use rex::daemon::control::client::{self, DEFAULT_SOCKET};
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
        domain: args.domain,
        change,
    };
    send("sla", &args.socket, request)
}

pub fn pause(args: PauseArgs) -> ExitCode {
    send("pause", &args.socket, Request::Pause)
}

pub fn resume(args: PauseArgs) -> ExitCode {
    send("resume", &args.socket, Request::Resume)
}

fn send(name: &str, socket: &Socket, request: Request) -> ExitCode {
    match client::request(&socket.path, &request) {
        Ok(body) => {
            rex::print_safe!("{body}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            rex::eprintln_safe!("rex {name}: {}", error_chain(&e));
            ExitCode::from(e.status())
        }
    }
}
