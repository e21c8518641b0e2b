//! The exec actuator: SRX's way. Every change is a fork/exec of the `xl`
//! command an administrator would type (`xl sched-credit2 -d 3 -c 40`,
//! `xl mem-set 3 131072k`), as SRX did with `xm`; reads still go through a
//! wrapped host (libxl), so only the cost of applying differs. `rex run
//! --actuator exec` exists to measure that cost against libxl's.
//!
//! [`XlCommand`] builds and runs the command lines and knows nothing of
//! libxl, so it can be tested against a stub `xl`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{EventSource, Host, HostError};
use crate::engine::{DomId, DomainInfo, GuestReport, HostInfo, KiB, SchedParams, Scheduler};

/// Environment variable naming the `xl` binary when `--xl` is not given.
pub const XL_ENV: &str = "REX_XL";

/// Extra attempts to start `xl` while its file is busy being written.
const SPAWN_RETRIES: u32 = 5;

/// Why an `xl` command did not do its job.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot run {xl}")]
    Spawn {
        xl: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}){}", stderr_suffix(.stderr))]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("no xl command sets parameters of the {0} scheduler")]
    UnsupportedScheduler(String),
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

/// The `xl` binary: `--xl PATH`, else `$REX_XL`, else `xl` on PATH.
pub fn resolve_xl(flag: Option<PathBuf>) -> PathBuf {
    resolve_xl_with(flag, std::env::var_os(XL_ENV))
}

/// [`resolve_xl`] with the value of `$REX_XL` given, not read.
pub fn resolve_xl_with(flag: Option<PathBuf>, env: Option<OsString>) -> PathBuf {
    flag.or_else(|| env.filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("xl"))
}

/// One scheduler setting, as one `xl sched-credit[2]` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedSetting {
    /// `-c`: the cap, percent of one pCPU (0 = uncapped).
    Cap(u32),
    /// `-w`: the weight.
    Weight(u32),
}

/// Builds and runs `xl` command lines.
#[derive(Debug, Clone)]
pub struct XlCommand {
    xl: PathBuf,
    /// The PATH `xl` is looked up in and runs with; None: rex's own.
    search_path: Option<OsString>,
}

impl XlCommand {
    pub fn new(xl: PathBuf) -> Self {
        Self {
            xl,
            search_path: None,
        }
    }

    /// Looks a bare `xl` up in `path`, not in rex's PATH (and runs it with
    /// that PATH).
    pub fn with_search_path(mut self, path: OsString) -> Self {
        self.search_path = Some(path);
        self
    }

    /// `sched-credit -d D -c CAP` (or `-w W`), or `sched-credit2 …` for
    /// credit2.
    pub fn sched_args(
        scheduler: &Scheduler,
        domid: DomId,
        setting: SchedSetting,
    ) -> Result<Vec<String>, ExecError> {
        let sub = match scheduler {
            Scheduler::Credit => "sched-credit",
            Scheduler::Credit2 => "sched-credit2",
            Scheduler::Other(name) => return Err(ExecError::UnsupportedScheduler(name.clone())),
        };
        let (flag, value) = match setting {
            SchedSetting::Cap(cap) => ("-c", cap),
            SchedSetting::Weight(weight) => ("-w", weight),
        };
        Ok(vec![
            sub.to_string(),
            "-d".into(),
            domid.to_string(),
            flag.into(),
            value.to_string(),
        ])
    }

    /// `mem-set D <N>k`: an absolute target in KiB, as `xl` parses it.
    pub fn mem_set_args(domid: DomId, target_kb: KiB) -> Vec<String> {
        vec!["mem-set".into(), domid.to_string(), format!("{target_kb}k")]
    }

    /// Runs `xl args…` and waits. Non-zero exit → [`ExecError::Failed`]
    /// with xl's stderr.
    pub fn run(&self, args: &[String]) -> Result<(), ExecError> {
        let spawn = || {
            let mut command = Command::new(&self.xl);
            if let Some(path) = &self.search_path {
                command.env("PATH", path);
            }
            command
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
        };
        // "Text file busy": the binary is open for writing somewhere (an xl
        // being replaced by an upgrade, or one just written while another
        // thread forked). It clears within moments; try a few times.
        let mut result = spawn();
        for _ in 0..SPAWN_RETRIES {
            match &result {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    result = spawn();
                }
                _ => break,
            }
        }
        let output = result.map_err(|source| ExecError::Spawn {
            xl: self.xl.display().to_string(),
            source,
        })?;
        if output.status.success() {
            return Ok(());
        }
        let mut words: Vec<OsString> = vec![self.xl.clone().into_os_string()];
        words.extend(args.iter().map(OsString::from));
        let command = words
            .iter()
            .map(|w| w.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        Err(ExecError::Failed {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }

    pub fn set_sched(
        &self,
        scheduler: &Scheduler,
        domid: DomId,
        setting: SchedSetting,
    ) -> Result<(), ExecError> {
        self.run(&Self::sched_args(scheduler, domid, setting)?)
    }

    pub fn set_memory(&self, domid: DomId, target_kb: KiB) -> Result<(), ExecError> {
        self.run(&Self::mem_set_args(domid, target_kb))
    }
}

/// A host that reads through `reads` and writes by running `xl`.
pub struct ExecHost<H: Host> {
    reads: H,
    xl: XlCommand,
    /// The guests' scheduler, from the last `host_info`.
    scheduler: Option<Scheduler>,
}

impl<H: Host> ExecHost<H> {
    pub fn new(reads: H, xl: XlCommand) -> Self {
        Self {
            reads,
            xl,
            scheduler: None,
        }
    }

    /// The wrapped host that reads.
    pub fn reads_mut(&mut self) -> &mut H {
        &mut self.reads
    }

    /// `xl sched-credit[2] -d D -c CAP` or `… -w WEIGHT`: one setting, the
    /// other left as it is (as an administrator would type it).
    fn set_sched(&mut self, domid: DomId, setting: SchedSetting) -> Result<(), HostError> {
        // The domain's own pool decides (`xl sched-credit2` on a domain in
        // a credit pool fails); the guests' scheduler if it cannot be read.
        let scheduler = match self.reads.domain_scheduler(domid) {
            Ok(Some(s)) => s,
            Ok(None) | Err(_) => self.scheduler()?,
        };
        self.xl
            .set_sched(&scheduler, domid, setting)
            .map_err(|e| HostError::SetSched {
                domid,
                source: Box::new(e),
            })
    }

    fn scheduler(&mut self) -> Result<Scheduler, HostError> {
        if let Some(s) = &self.scheduler {
            return Ok(s.clone());
        }
        Ok(self.host_info()?.scheduler)
    }
}

impl<H: Host> Host for ExecHost<H> {
    fn now_ns(&mut self) -> u64 {
        self.reads.now_ns()
    }

    fn list_domains(&mut self) -> Result<Vec<DomainInfo>, HostError> {
        self.reads.list_domains()
    }

    fn host_info(&mut self) -> Result<HostInfo, HostError> {
        let info = self.reads.host_info()?;
        self.scheduler = Some(info.scheduler.clone());
        Ok(info)
    }

    fn sched_params(&mut self, domid: DomId) -> Result<SchedParams, HostError> {
        self.reads.sched_params(domid)
    }

    fn set_cap(&mut self, domid: DomId, cap: u32) -> Result<(), HostError> {
        self.set_sched(domid, SchedSetting::Cap(cap))
    }

    fn set_weight(&mut self, domid: DomId, weight: u32) -> Result<(), HostError> {
        self.set_sched(domid, SchedSetting::Weight(weight))
    }

    fn set_memory_target(&mut self, domid: DomId, target_kb: KiB) -> Result<(), HostError> {
        self.xl
            .set_memory(domid, target_kb)
            .map_err(|e| HostError::SetMemory {
                domid,
                source: Box::new(e),
            })
    }

    /// xl has no command for it: written through the reading backend's
    /// xenstore connection, as the guests' values are read.
    fn set_uncooperative(&mut self, domid: DomId, uncooperative: bool) -> Result<(), HostError> {
        self.reads.set_uncooperative(domid, uncooperative)
    }

    fn domain_scheduler(&mut self, domid: DomId) -> Result<Option<Scheduler>, HostError> {
        self.reads.domain_scheduler(domid)
    }

    fn guest_report(&mut self, domid: DomId) -> Result<GuestReport, HostError> {
        self.reads.guest_report(domid)
    }
}

impl<H: Host + EventSource> EventSource for ExecHost<H> {
    fn before_poll(
        &mut self,
        fds: &mut Vec<libc::pollfd>,
        timeout_ms: &mut i32,
    ) -> Result<(), HostError> {
        self.reads.before_poll(fds, timeout_ms)
    }

    fn after_poll(&mut self, fds: &[libc::pollfd]) {
        self.reads.after_poll(fds)
    }

    fn take_deaths(&mut self) -> Vec<DomId> {
        self.reads.take_deaths()
    }

    fn watch_deaths(&mut self, domids: &[DomId]) {
        self.reads.watch_deaths(domids)
    }

    fn take_changed(&mut self) -> Vec<DomId> {
        self.reads.take_changed()
    }

    fn since_tick(
        &mut self,
        domid: DomId,
    ) -> Result<Option<(GuestReport, GuestReport)>, HostError> {
        self.reads.since_tick(domid)
    }

    fn key_counters(&self) -> super::guest_keys::KeyCounters {
        self.reads.key_counters()
    }
}
