//! `rex`: the command-line front end.
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod cli;
mod plot;

#[derive(Parser)]
#[command(name = "rex", version, about = "Resource reallocator for Xen hosts", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay a scenario on the simulated host, with rex and with static allocation
    Simulate(cli::simulate::Args),
    /// Build an SLA decomposition table from a CSV of benchmark runs
    Decompose(cli::decompose::Args),
    /// Run the reallocator as a daemon on this Xen host
    Run(cli::run::Args),
    /// Show what a running rex manages and why (its control socket)
    Status(cli::control::StatusArgs),
    /// Give a domain a new SLA or level in a running rex, from its next tick
    Sla(cli::control::SlaArgs),
    /// Hold every change of a running rex (it goes on observing)
    Pause(cli::control::PauseArgs),
    /// Let a paused rex change things again
    Resume(cli::control::PauseArgs),
    /// Summarize and plot a real run from the daemon's --json output
    Report(cli::report::Args),
    /// Write rex's man pages (rex.8, rex-SUBCOMMAND.8) to a directory
    #[command(hide = true)]
    Man(cli::man::Args),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate(args) => cli::simulate::main(args),
        Command::Decompose(args) => cli::decompose::main(args),
        Command::Run(args) => cli::run::main(args),
        Command::Status(args) => cli::control::status(args),
        Command::Sla(args) => cli::control::sla(args),
        Command::Pause(args) => cli::control::pause(args),
        Command::Resume(args) => cli::control::resume(args),
        Command::Report(args) => cli::report::main(args),
        Command::Man(args) => cli::man::main(args, Cli::command()),
    }
}
