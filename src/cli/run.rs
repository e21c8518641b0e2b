//! `rex run`: the reallocator as a standalone daemon with its own libxl
//! context. `--actuator exec` applies changes by running `xl` (SRX's way)
//! while still reading through libxl.
use std::path::PathBuf;
use std::process::ExitCode;

use crate::daemon::{self, DaemonArgs, DaemonError};
use crate::host::driver::error_chain;
use crate::host::exec::{resolve_xl, ExecHost, XlCommand};
use crate::host::libxl::LibxlHost;

/// How changes are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Actuator {
    /// libxl calls in process
    Libxl,
    /// fork/exec of `xl sched-credit[2]` / `xl mem-set` per change
    Exec,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// How changes are applied
    #[arg(long, value_enum, default_value_t = Actuator::Libxl)]
    pub actuator: Actuator,
    /// The xl binary for --actuator exec (default: $REX_XL, else `xl` on PATH)
    #[arg(long, value_name = "PATH")]
    pub xl: Option<PathBuf>,
}

pub fn main(args: Args) -> ExitCode {
    match run(&args) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            crate::eprintln_safe!("rex run: {}", error_chain(&e));
            ExitCode::from(e.status())
        }
    }
}

fn run(args: &Args) -> Result<daemon::Stopped, DaemonError> {
    // The policy first: a config error is reported as one, before any
    // attempt to reach Xen.
    let config = daemon::load(&args.daemon)?;
    let host = LibxlHost::open()?;
    let out = Box::new(std::io::stdout());
    match args.actuator {
        Actuator::Libxl => daemon::run(host, config, &args.daemon, out),
        Actuator::Exec => {
            let xl = XlCommand::new(resolve_xl(args.xl.clone()));
            daemon::run(ExecHost::new(host, xl), config, &args.daemon, out)
        }
    }
}
