//! `rex run`.
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn main(_args: Args) -> ExitCode {
    eprintln!("rex run: not built yet");
    ExitCode::FAILURE
}
