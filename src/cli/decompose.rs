//! `rex decompose`.
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn main(_args: Args) -> ExitCode {
    eprintln!("rex decompose: not built yet");
    ExitCode::FAILURE
}
