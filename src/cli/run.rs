//! `rex run`: the reallocator as a standalone daemon with its own libxl
//! context. `--actuator exec` applies changes by running `xl` (SRX's way)
//! while still reading through libxl.
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command};
use rex::daemon::args::{ArgsError, OPTIONS};
use rex::daemon::{self, DaemonArgs, DaemonError};
use rex::error_chain;
use rex::host::exec::resolve_xl;
use rex::host::{self, Backend};

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
    pub daemon: Daemon,
    /// How changes are applied
    #[arg(long, value_enum, default_value_t = Actuator::Libxl)]
    pub actuator: Actuator,
    /// The xl binary for --actuator exec (default: $REX_XL, else `xl` on PATH)
    #[arg(long, value_name = "PATH")]
    pub xl: Option<PathBuf>,
}

/// The daemon's options, defined once in the library (`xl rex` parses
/// them there, without clap) and offered to clap from that table.
/// A bad value is reported by `main`, in rex's words, not clap's.
#[derive(Debug)]
pub struct Daemon(pub Result<DaemonArgs, ArgsError>);

impl clap::FromArgMatches for Daemon {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = DaemonArgs::default();
        let mut first_error = None;
        for option in OPTIONS {
            let result = if option.value.is_some() {
                match matches.get_one::<OsString>(option.long) {
                    Some(value) => args.set(option.long, Some(value)),
                    None => Ok(()),
                }
            } else if matches.get_flag(option.long) {
                args.set(option.long, None)
            } else {
                Ok(())
            };
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        Ok(Self(first_error.map_or(Ok(args), Err)))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for Daemon {
    fn augment_args(cmd: Command) -> Command {
        OPTIONS.iter().fold(cmd, |cmd, option| {
            let mut arg = Arg::new(option.long)
                .long(option.long)
                .help(option.help)
                // Repeated, the last one wins (as in `xl rex`).
                .overrides_with(option.long);
            if let Some(short) = option.short {
                arg = arg.short(short);
            }
            arg = match option.value {
                Some(name) => arg
                    .value_name(name)
                    .value_parser(clap::value_parser!(OsString))
                    .action(ArgAction::Set),
                None => arg.action(ArgAction::SetTrue),
            };
            cmd.arg(arg)
        })
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

pub fn main(args: Args) -> ExitCode {
    let daemon = match &args.daemon.0 {
        Ok(daemon) => daemon,
        Err(e) => {
            rex::eprintln_safe!("rex run: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args, daemon) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            rex::eprintln_safe!("rex run: {}", error_chain(&e));
            ExitCode::from(e.status())
        }
    }
}

fn run(args: &Args, daemon_args: &DaemonArgs) -> Result<daemon::Stopped, DaemonError> {
    // The policy first: a config error is reported as one, before any
    // attempt to reach Xen.
    let config = daemon::load(daemon_args)?;
    let backend = match args.actuator {
        Actuator::Libxl => Backend::Libxl,
        Actuator::Exec => Backend::Exec {
            xl: resolve_xl(args.xl.clone()),
        },
    };
    let mut host = host::open(backend)?;
    if daemon_args.poll {
        host.poll_keys();
    }
    daemon::run(host, config, daemon_args, Box::new(std::io::stdout()))
}
