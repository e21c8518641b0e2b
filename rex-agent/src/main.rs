//! `rex-agent`: runs inside a Xen guest and publishes, under the guest's
//! own xenstore directory, what rex needs to know and cannot see from dom0:
//!
//! - `data/meminfo_total` and `data/meminfo_free`: MemTotal and
//!   MemAvailable from `/proc/meminfo`, kB (the XenServer guest tools'
//!   keys), every `--interval` seconds and at once when available memory
//!   moves by a tenth of the total (or 8 MiB) between two looks;
//! - `data/rex/response_ms`: with `--response-file FILE`, the number the
//!   application writes there (its recent mean response time, ms);
//! - `data/rex/agent`: the agent's name and version, with every
//!   publication (a toolstack may clear `data/rex`), so rex can tell a guest
//!   with an agent from one without;
//! - `data/rex/seq` and `data/rex/interval_ms`: a counter bumped with every
//!   publication of memory figures, and the period: rex ignores the values
//!   of a guest whose counter stops for five periods (a dead agent).
//!
//! A static binary with no dependency: `cargo build --release -p rex-agent`
//! (with `RUSTFLAGS="-C target-feature=+crt-static"` for a guest without
//! glibc).

mod meminfo;
mod xenbus;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use meminfo::MemInfo;
use xenbus::Xenbus;

const VERSION: &str = concat!("rex-agent ", env!("CARGO_PKG_VERSION"));
const USAGE: &str = "usage: rex-agent [--interval SECONDS] [--response-file FILE] [--once]";
/// How often memory is looked at between two publications.
const LOOK_EVERY: Duration = Duration::from_millis(200);

struct Args {
    interval: Duration,
    response_file: Option<PathBuf>,
    once: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        interval: Duration::from_secs(1),
        response_file: None,
        once: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--interval" => {
                let value = args.next().ok_or("--interval needs a number of seconds")?;
                let secs: f64 = value
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && (0.1..=3600.0).contains(s))
                    .ok_or(format!("--interval {value}: seconds in 0.1..=3600"))?;
                parsed.interval = Duration::from_secs_f64(secs);
            }
            "--response-file" => {
                let value = args.next().ok_or("--response-file needs a path")?;
                parsed.response_file = Some(PathBuf::from(value));
            }
            "--once" => parsed.once = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument `{other}'\n{USAGE}")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("rex-agent: {message}");
            return ExitCode::from(2);
        }
    };
    let mut bus = match Xenbus::open() {
        Ok(bus) => bus,
        Err(e) => {
            eprintln!("rex-agent: cannot reach xenstore: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = bus.write("data/rex/agent", VERSION) {
        eprintln!("rex-agent: {e}");
        return ExitCode::FAILURE;
    }
    let mut last: Option<(Instant, MemInfo)> = None;
    let mut last_error = String::new();
    let mut seq: u64 = 0;
    loop {
        let now = Instant::now();
        let info = match MemInfo::read() {
            Ok(info) => Some(info),
            Err(e) => {
                report_once(&mut last_error, format!("/proc/meminfo: {e}"));
                None
            }
        };
        let due = match (&last, &info) {
            (None, _) => true,
            (Some((at, before)), Some(info)) => {
                now.duration_since(*at) >= args.interval || info.moved_a_lot_since(before)
            }
            (Some((at, _)), None) => now.duration_since(*at) >= args.interval,
        };
        if due {
            seq += u64::from(info.is_some());
            let period_ms = args.interval.as_millis();
            match publish(
                &mut bus,
                info.as_ref(),
                args.response_file.as_deref(),
                (seq, period_ms),
            ) {
                Ok(()) => last_error.clear(),
                Err(e) => {
                    report_once(&mut last_error, e.to_string());
                    // The connection may be gone (xenstored restarted).
                    if let Ok(fresh) = Xenbus::open() {
                        bus = fresh;
                    }
                }
            }
            if let Some(info) = info {
                last = Some((now, info));
            }
            if args.once {
                return if last_error.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                };
            }
        }
        std::thread::sleep(LOOK_EVERY);
    }
}

fn publish(
    bus: &mut Xenbus,
    info: Option<&MemInfo>,
    response_file: Option<&std::path::Path>,
    (seq, period_ms): (u64, u128),
) -> std::io::Result<()> {
    bus.write("data/rex/agent", VERSION)?;
    if let Some(info) = info {
        bus.write("data/meminfo_total", &info.total_kb.to_string())?;
        bus.write("data/meminfo_free", &info.available_kb.to_string())?;
    }
    if let Some(path) = response_file {
        // A missing or unreadable file publishes nothing: rex then has no
        // figure, which is not the same as a good one.
        if let Some(ms) = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| meminfo::response_ms(&text))
        {
            bus.write("data/rex/response_ms", &ms)?;
        }
    }
    if info.is_some() {
        // After every figure: a counter that moves says they are new (rex
        // reads nothing else while it stands).
        bus.write("data/rex/interval_ms", &period_ms.to_string())?;
        bus.write("data/rex/seq", &seq.to_string())?;
    }
    Ok(())
}

/// One line on stderr per distinct error, not one per second.
fn report_once(last: &mut String, message: String) {
    if *last != message {
        eprintln!("rex-agent: {message}");
        *last = message;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments() {
        let a = args(&["--interval", "2.5", "--response-file", "/run/app.ms"]).unwrap();
        assert_eq!(a.interval, Duration::from_millis(2500));
        assert_eq!(a.response_file, Some(PathBuf::from("/run/app.ms")));
        assert!(args(&["--interval", "0"]).is_err());
        assert!(args(&["--interval", "nan"]).is_err());
        assert!(args(&["--colour"]).is_err());
        assert!(args(&["--once"]).unwrap().once);
    }
}
