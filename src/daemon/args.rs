//! The options `rex run` and `xl rex` share, and their parser.
//!
//! librex lives inside xl, so it parses its own few options by hand, in
//! getopt's way (`-c FILE`, `-cFILE`, `--config FILE`, `--config=FILE`,
//! `--` ends the options) rather than link an argument-parsing crate into
//! xl. The `rex` binary builds its clap definition of `rex run` from the
//! same table ([`OPTIONS`]) and hands each value to [`DaemonArgs::set`],
//! so the two front ends cannot drift apart.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::DEFAULT_POLICY;

/// One option of the daemon.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    pub long: &'static str,
    pub short: Option<char>,
    /// The value's name in help, for an option that takes one.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

/// Every option of the daemon, in help order.
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        long: "config",
        short: Some('c'),
        value: Some("POLICY"),
        help: "Policy file (xl cfg syntax) [default: /etc/xen/rex.cfg]",
    },
    OptionSpec {
        long: "dry-run",
        short: None,
        value: None,
        help: "Decide and print, but change nothing",
    },
    OptionSpec {
        long: "once",
        short: None,
        value: None,
        help: "One tick, then exit",
    },
    OptionSpec {
        long: "poll",
        short: None,
        value: None,
        help: "Read every guest's xenstore keys every tick instead of watching them (for \
               comparison; watching reads a guest's keys only after it wrote them)",
    },
    OptionSpec {
        long: "json",
        short: None,
        value: None,
        help: "One JSON object per line instead of text",
    },
    OptionSpec {
        long: "verbose",
        short: Some('v'),
        value: None,
        help: "Print every domain's usage each tick",
    },
    OptionSpec {
        long: "interval",
        short: None,
        value: Some("MS"),
        help: "Milliseconds between ticks, 10..=3600000 (overrides the policy's `interval`)",
    },
    OptionSpec {
        long: "metrics",
        short: None,
        value: Some("FILE"),
        help: "Write metrics in the Prometheus text format to FILE after every tick, \
               atomically (for node_exporter's textfile collector)",
    },
    OptionSpec {
        long: "metrics-listen",
        short: None,
        value: Some("[ADDR:]PORT"),
        help: "Serve the metrics at http://ADDR:PORT/metrics from the daemon's loop; a bare \
               PORT listens on 127.0.0.1 only [default: not served]",
    },
    OptionSpec {
        long: "control",
        short: None,
        value: Some("SOCKET"),
        help: "Control socket for `rex status`, `rex sla`, `rex pause`/`resume`, and the \
               one-daemon lock; `none` for neither [default: /run/rex/rex.sock]",
    },
];

/// The range `--interval` accepts, ms.
pub const INTERVAL_RANGE_MS: std::ops::RangeInclusive<u64> = 10..=3_600_000;

/// The daemon's options. Each may be repeated, the last one winning: `xl
/// rex` puts xl's own `--config`/`--dry-run` before the user's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonArgs {
    /// Policy file (xl cfg syntax).
    pub policy: PathBuf,
    /// Decide and print, but change nothing.
    pub dry_run: bool,
    /// One tick, then exit.
    pub once: bool,
    /// Read the guests' keys every tick instead of watching them.
    pub poll: bool,
    /// One JSON object per line instead of text.
    pub json: bool,
    /// Print every domain's usage each tick.
    pub verbose: bool,
    /// Milliseconds between ticks (overrides the policy's `interval`).
    pub interval: Option<u64>,
    /// Where to write the metrics after every tick.
    pub metrics: Option<PathBuf>,
    /// Where to serve the metrics over HTTP.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The control socket (also the one-daemon lock); `None`: neither.
    pub control: Option<PathBuf>,
}

impl Default for DaemonArgs {
    fn default() -> Self {
        Self {
            policy: PathBuf::from(DEFAULT_POLICY),
            dry_run: false,
            once: false,
            poll: false,
            json: false,
            verbose: false,
            interval: None,
            metrics: None,
            metrics_listen: None,
            control: Some(PathBuf::from(super::control::client::DEFAULT_SOCKET)),
        }
    }
}

/// A command line the daemon cannot take. Each names the option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("unknown option '{0}'")]
    Unknown(String),
    #[error("option '--{0}' needs a value")]
    MissingValue(&'static str),
    #[error("option '--{0}' takes no value")]
    UnexpectedValue(&'static str),
    #[error("invalid value '{value}' for '--{option}': {why}")]
    BadValue {
        option: &'static str,
        value: String,
        why: String,
    },
    #[error("unexpected argument '{0}' (the daemon takes options only)")]
    Positional(String),
}

/// What a command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Run(DaemonArgs),
    Help,
    Version,
}

impl DaemonArgs {
    /// Parses the options after the program name.
    pub fn parse<I>(args: I) -> Result<Parsed, ArgsError>
    where
        I: IntoIterator<Item = OsString>,
    {
        let mut parsed = Self::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let bytes = arg.as_bytes();
            if bytes == b"--" {
                if let Some(extra) = args.next() {
                    return Err(ArgsError::Positional(lossy(&extra)));
                }
                break;
            }
            if bytes == b"--help" || bytes == b"-h" {
                return Ok(Parsed::Help);
            }
            if bytes == b"--version" || bytes == b"-V" {
                return Ok(Parsed::Version);
            }
            let (spec, inline) = if let Some(long) = bytes.strip_prefix(b"--") {
                let (name, inline) = match long.iter().position(|&b| b == b'=') {
                    Some(at) => (&long[..at], Some(OsStr::from_bytes(&long[at + 1..]))),
                    None => (long, None),
                };
                let spec = OPTIONS
                    .iter()
                    .find(|o| o.long.as_bytes() == name)
                    .ok_or_else(|| ArgsError::Unknown(lossy(&arg)))?;
                (spec, inline)
            } else if bytes.len() >= 2 && bytes[0] == b'-' {
                let short = char::from(bytes[1]);
                let spec = OPTIONS
                    .iter()
                    .find(|o| o.short == Some(short))
                    .ok_or_else(|| ArgsError::Unknown(lossy(&arg)))?;
                let rest = &bytes[2..];
                match (spec.value, rest.is_empty()) {
                    (Some(_), false) => (spec, Some(OsStr::from_bytes(rest))),
                    (_, true) => (spec, None),
                    // Bundled flags (-vv) are not worth the surprise.
                    (None, false) => return Err(ArgsError::Unknown(lossy(&arg))),
                }
            } else {
                return Err(ArgsError::Positional(lossy(&arg)));
            };
            // A flag given a value (`--once=yes`) is refused by `set`.
            let value = match (spec.value, inline) {
                (_, Some(v)) => Some(v.to_os_string()),
                (Some(_), None) => Some(args.next().ok_or(ArgsError::MissingValue(spec.long))?),
                (None, None) => None,
            };
            parsed.set(spec.long, value.as_deref())?;
        }
        Ok(Parsed::Run(parsed))
    }

    /// Sets one option, by its long name, as given on the command line.
    pub fn set(&mut self, long: &str, value: Option<&OsStr>) -> Result<(), ArgsError> {
        let spec = OPTIONS
            .iter()
            .find(|o| o.long == long)
            .ok_or_else(|| ArgsError::Unknown(format!("--{long}")))?;
        let value = match (spec.value, value) {
            (Some(_), None) => return Err(ArgsError::MissingValue(spec.long)),
            (None, Some(_)) => return Err(ArgsError::UnexpectedValue(spec.long)),
            (_, value) => value,
        };
        match (spec.long, value) {
            ("config", Some(v)) if v.is_empty() => {
                return Err(ArgsError::BadValue {
                    option: spec.long,
                    value: String::new(),
                    why: "a policy file's path cannot be empty".into(),
                })
            }
            ("config", Some(v)) => self.policy = PathBuf::from(v),
            ("dry-run", None) => self.dry_run = true,
            ("once", None) => self.once = true,
            ("poll", None) => self.poll = true,
            ("json", None) => self.json = true,
            ("verbose", None) => self.verbose = true,
            ("interval", Some(v)) => self.interval = Some(interval_ms(spec.long, v)?),
            ("metrics", Some(v)) if v.is_empty() => {
                return Err(ArgsError::BadValue {
                    option: spec.long,
                    value: String::new(),
                    why: "a metrics file's path cannot be empty".into(),
                })
            }
            ("metrics", Some(v)) => self.metrics = Some(PathBuf::from(v)),
            ("metrics-listen", Some(v)) => {
                let address = super::metrics_http::parse_listen(&lossy(v)).map_err(|why| {
                    ArgsError::BadValue {
                        option: spec.long,
                        value: lossy(v),
                        why,
                    }
                })?;
                self.metrics_listen = Some(address);
            }
            ("control", Some(v)) if v.is_empty() => {
                return Err(ArgsError::BadValue {
                    option: spec.long,
                    value: String::new(),
                    why: "a control socket's path cannot be empty (`none' for no socket)".into(),
                })
            }
            ("control", Some(v)) if v == "none" => self.control = None,
            ("control", Some(v)) => self.control = Some(PathBuf::from(v)),
            _ => unreachable!("every option of OPTIONS is handled"),
        }
        Ok(())
    }
}

fn interval_ms(option: &'static str, value: &OsStr) -> Result<u64, ArgsError> {
    let bad = |why: String| ArgsError::BadValue {
        option,
        value: lossy(value),
        why,
    };
    let text = value
        .to_str()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| bad("not a number of milliseconds".into()))?;
    let ms: u64 = text.parse().map_err(|_| bad("too large".into()))?;
    if !INTERVAL_RANGE_MS.contains(&ms) {
        return Err(bad(format!(
            "{ms} is not in {}..={}",
            INTERVAL_RANGE_MS.start(),
            INTERVAL_RANGE_MS.end()
        )));
    }
    Ok(ms)
}

fn lossy(s: &OsStr) -> String {
    s.to_string_lossy().into_owned()
}

/// Help for a front end named `program`, built from [`OPTIONS`].
pub fn help_text(program: &str, about: &str) -> String {
    let mut text = format!("{about}\n\nUsage: {program} [OPTIONS]\n\nOptions:\n");
    let mut rows: Vec<(String, &str)> = OPTIONS
        .iter()
        .map(|o| {
            let short = o.short.map_or("    ".to_string(), |c| format!("-{c}, "));
            let value = o.value.map_or(String::new(), |v| format!(" <{v}>"));
            (format!("{short}--{}{value}", o.long), o.help)
        })
        .collect();
    rows.push(("-h, --help".into(), "Print help"));
    rows.push(("-V, --version".into(), "Print version"));
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    for (left, help) in rows {
        text.push_str(&format!("  {left:width$}  {help}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed, ArgsError> {
        DaemonArgs::parse(args.iter().map(OsString::from))
    }

    fn run(args: &[&str]) -> DaemonArgs {
        match parse(args) {
            Ok(Parsed::Run(a)) => a,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn every_spelling_of_a_value_is_taken() {
        for args in [
            &["-c", "/a.cfg"][..],
            &["-c/a.cfg"],
            &["--config", "/a.cfg"],
            &["--config=/a.cfg"],
        ] {
            assert_eq!(run(args).policy, PathBuf::from("/a.cfg"), "{args:?}");
        }
        assert_eq!(run(&[]), DaemonArgs::default());
        assert_eq!(run(&["--interval=250"]).interval, Some(250));
        assert_eq!(run(&["--control", "none"]).control, None);
        assert_eq!(
            run(&["--metrics-listen", "9101"]).metrics_listen,
            Some("127.0.0.1:9101".parse().unwrap())
        );
        assert_eq!(
            run(&["--control=/tmp/r.sock"]).control,
            Some(PathBuf::from("/tmp/r.sock"))
        );
    }

    #[test]
    fn the_last_of_a_repeated_option_wins() {
        let a = run(&[
            "--config",
            "/xl.cfg",
            "--dry-run",
            "-v",
            "-c",
            "/mine.cfg",
            "--dry-run",
        ]);
        assert_eq!(a.policy, PathBuf::from("/mine.cfg"));
        assert!(a.dry_run && a.verbose && !a.once && !a.json);
        assert_eq!(
            run(&["--interval", "100", "--interval", "200"]).interval,
            Some(200)
        );
    }

    #[test]
    fn help_and_version_are_not_errors() {
        assert_eq!(parse(&["--once", "--help"]), Ok(Parsed::Help));
        assert_eq!(parse(&["-V"]), Ok(Parsed::Version));
        let help = help_text("xl rex", "about");
        for o in OPTIONS {
            assert!(help.contains(&format!("--{}", o.long)), "{help}");
        }
    }

    #[test]
    fn bad_command_lines_name_the_option() {
        let cases: &[(&[&str], &str)] = &[
            (&["--actuator", "exec"], "unknown option '--actuator'"),
            (&["-x"], "unknown option '-x'"),
            (&["-vv"], "unknown option '-vv'"),
            (&["--config"], "option '--config' needs a value"),
            (&["-c"], "option '--config' needs a value"),
            (&["--once=yes"], "option '--once' takes no value"),
            (&["--config="], "invalid value '' for '--config'"),
            (&["--control="], "invalid value '' for '--control'"),
            (
                &["--interval", "5"],
                "invalid value '5' for '--interval': 5 is not in 10..=3600000",
            ),
            (
                &["--interval", "-1"],
                "invalid value '-1' for '--interval': not a number",
            ),
            (&["--interval", "99999999999999999999999"], "too large"),
            (&["policy.cfg"], "unexpected argument 'policy.cfg'"),
            (&["--", "x"], "unexpected argument 'x'"),
        ];
        for (args, expected) in cases {
            let e = parse(args).expect_err(&format!("{args:?}")).to_string();
            assert!(e.contains(expected), "{args:?}: {e}");
        }
    }

    #[test]
    fn non_utf8_values_are_paths_not_errors() {
        use std::os::unix::ffi::OsStringExt;
        let path = OsString::from_vec(b"/etc/xen/r\xffx.cfg".to_vec());
        let args = [OsString::from("-c"), path.clone()];
        assert_eq!(
            DaemonArgs::parse(args),
            Ok(Parsed::Run(DaemonArgs {
                policy: PathBuf::from(path),
                ..DaemonArgs::default()
            }))
        );
    }
}
