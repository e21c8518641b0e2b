//! `rex simulate`.
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn main(_args: Args) -> ExitCode {
    eprintln!("rex simulate: not built yet");
    ExitCode::FAILURE
}
