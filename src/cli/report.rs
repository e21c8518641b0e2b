//! `rex report LOG.jsonl [--svg FILE]`: the summary of a real run, and
//! the same plot as `rex simulate --svg`, from the daemon's `--json` output.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use rex::report::RunLog;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The output of `rex run --json --verbose` (or `xl rex -- --json
    /// --verbose`); `-` reads standard input
    pub log: PathBuf,
    /// Also draw caps, memory and response time over time (SVG)
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

pub fn main(args: Args) -> ExitCode {
    let shown = args.log.display().to_string();
    let text = if shown == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    } else {
        std::fs::read_to_string(&args.log)
    };
    let text = match text {
        Ok(text) => text,
        Err(e) => {
            rex::eprintln_safe!("rex report: {shown}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let log = match RunLog::parse(&shown, &text) {
        Ok(log) => log,
        Err(e) => {
            rex::eprintln_safe!("rex report: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.svg {
        let columns = [("rex", log.timeline.as_slice())];
        if let Err(e) = crate::plot::write_timelines(path, &columns, log.common_sla_ms()) {
            rex::eprintln_safe!("rex report: --svg {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    rex::print_safe!("{}", log.summary(&shown));
    ExitCode::SUCCESS
}
