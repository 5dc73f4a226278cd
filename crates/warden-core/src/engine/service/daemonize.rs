//! Programs that daemonize: the launcher forks the real server and exits. With `pid_file`,
//! the process named in the file becomes the main one (systemd's `Type=forking` with
//! `PIDFile=`); without it, a launcher that exits 0 and leaves a process behind that is
//! surely this service's has it adopted (`GuessMainPID`), unless `daemon = false`. Which
//! process is this service's is the process layer's business (`Proc::find_daemon`,
//! `Proc::follow`: it refuses a pid outside the tree, so a stale pid file never makes warden
//! signal a stranger).

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use super::{Level, Phase, Run, ServiceTask, error_chain, up};
use crate::process::{Adoption, DirWatch, ExitStatus};
use crate::state::pidfile::read_pid_file;
use crate::util::fmt_duration;

/// A launcher that exited with a success code, and the pid of its `pid_file` not yet
/// followed.
#[derive(Debug, Default)]
pub(super) struct PidWait {
    /// Why no pid was followed yet: the last problem with the file, for the reason of a
    /// start that times out.
    pub(super) problem: Option<String>,
    /// A pid read from the file and refused (not of the tree): skipped until the file says
    /// something else.
    pub(super) refused: Option<u32>,
}

impl ServiceTask {
    /// The main process exited with `status`. If its launcher daemonized, the run goes on
    /// (waiting for its `pid_file`, or following the adopted process): the phase to enter.
    /// Otherwise the run is given back, for an ordinary end.
    pub(super) fn daemonized(
        &mut self,
        mut run: Run,
        status: ExitStatus,
        was_up: bool,
    ) -> Result<Phase, Run> {
        if let Some(path) = &self.cfg.daemonize.pid_file {
            let success = crate::policy::is_success(&self.cfg.success_codes, Some(status));
            if run.followed || !success {
                return Err(run);
            }
            self.emit(
                Level::Info,
                &format!(
                    "launcher (pid {}) exited with {status}; reading the pid from {}",
                    run.child.pid(),
                    path.display()
                ),
            );
            run.awaiting = Some(PidWait::default());
            self.try_pid_file(&mut run);
            return Ok(self.settle(run, was_up));
        }
        if !self.cfg.daemonize.daemon || status != ExitStatus::Code(0) {
            return Err(run);
        }
        match run.child.find_daemon() {
            Adoption::Nothing => Err(run),
            // Never the process that just exited.
            Adoption::One(pid) if pid == run.child.pid() => Err(run),
            Adoption::One(pid) => {
                match run.child.follow(pid) {
                    Ok(()) => {
                        self.followed(&mut run, pid, "");
                        Ok(self.settle(run, was_up))
                    }
                    Err(e) => {
                        self.emit(
                        Level::Warn,
                        &format!("exited with code 0 and left pid {pid}, which cannot be followed: {e}"),
                    );
                        Err(run)
                    }
                }
            }
            Adoption::Ambiguous(pids) => {
                let list: Vec<String> = pids.iter().map(u32::to_string).collect();
                self.emit(
                    Level::Warn,
                    &format!(
                        "exited with code 0 and left processes behind that cannot be told apart \
                         (pids {}); adopting none (set pid_file to name the main process)",
                        list.join(", ")
                    ),
                );
                Err(run)
            }
        }
    }

    /// A run that ends for good: what its main process left behind and is surely this
    /// service's (a daemon that cleared its environment, under `daemon = false` or after a
    /// failed exit) is made part of the tree, so that ending the tree ends it too.
    pub(super) fn reach_leftovers(run: &mut Run) {
        if let Adoption::One(pid) = run.child.find_daemon()
            && pid != run.child.pid()
        {
            let _ = run.child.follow(pid);
        }
    }

    /// The phase for a run that goes on: `running` if it was up or is up now, else
    /// `starting`.
    fn settle(&self, run: Run, was_up: bool) -> Phase {
        if run.awaiting.is_none() && (was_up || up::is_up(&self.cfg, &run)) {
            Phase::Running(run)
        } else {
            Phase::Starting(run)
        }
    }

    /// `pid` is the main process now.
    fn followed(&self, run: &mut Run, pid: u32, from: &str) {
        run.followed = true;
        if let Some(probes) = &self.probes {
            probes.sample_pid(pid);
        }
        run.awaiting = None;
        run.main_since = Instant::now();
        self.emit(
            Level::Good,
            &format!("daemonized: following pid {pid}{from}"),
        );
        if let Err(e) = self
            .ctx
            .state
            .save_group(&run.child.group_record(self.name()))
        {
            self.emit(
                Level::Warn,
                &format!("cannot record main process {pid} in the state dir: {e}"),
            );
        }
    }

    /// The pid file named `pid` (read by [`next_pid`]): follow it if it is of the tree.
    pub(super) fn on_pid(&mut self, pid: u32) {
        let Phase::Starting(mut run) = self.take_phase() else {
            return;
        };
        self.follow_pid(&mut run, pid);
        let phase = self.settle(run, false);
        self.set(phase);
    }

    /// Read the pid file once now, and follow its pid if it is of the tree.
    pub(super) fn try_pid_file(&self, run: &mut Run) {
        let Some(path) = self.cfg.daemonize.pid_file.clone() else {
            return;
        };
        let Some(wait) = &mut run.awaiting else {
            return;
        };
        match read_pid_file(&path) {
            Ok(Some(pid)) if wait.refused != Some(pid) => self.follow_pid(run, pid),
            Ok(_) => {}
            Err(e) => wait.problem = Some(error_chain(&e)),
        }
    }

    fn follow_pid(&self, run: &mut Run, pid: u32) {
        let path = self
            .cfg
            .daemonize
            .pid_file
            .as_deref()
            .map_or_else(String::new, |p| p.display().to_string());
        match run.child.follow(pid) {
            Ok(()) => self.followed(run, pid, &format!(" (from {path})")),
            Err(e) => {
                if let Some(wait) = &mut run.awaiting {
                    wait.problem = Some(format!("{path}: {e}"));
                    wait.refused = Some(pid);
                }
            }
        }
    }

    /// The start did not become up within `start_timeout`: the reason, in words.
    pub(super) fn not_up_reason(&self, run: &Run) -> String {
        let why = if let Some(wait) = &run.awaiting {
            wait.problem.clone().unwrap_or_else(|| {
                let path = self
                    .cfg
                    .daemonize
                    .pid_file
                    .as_deref()
                    .unwrap_or(Path::new(""));
                format!("no pid in {}", path.display())
            })
        } else if self.cfg.daemonize.pid_file.is_some() && !run.followed {
            format!("the launcher (pid {}) has not exited", run.child.pid())
        } else if self.cfg.health.gated() {
            // health: the ready check's last error, or that READY=1 never came.
            self.probes
                .as_ref()
                .and_then(|p| p.ready_error())
                .map_or_else(
                    || "the ready check has not passed yet".to_owned(),
                    str::to_owned,
                )
        } else {
            format!(
                "pid {} has not run min_uptime ({}) yet",
                run.child.pid(),
                fmt_duration(self.cfg.min_uptime)
            )
        };
        format!(
            "not up within {}: {why}",
            fmt_whole(self.cfg.daemonize.start_timeout)
        )
    }
}

/// Wait until the pid file holds a pid other than the refused one; every problem on the way
/// is kept in `wait`. Event-driven (see [`DirWatch`]); cancel-safe.
pub(super) async fn next_pid(path: &Path, wait: &mut PidWait) -> u32 {
    let dir = path.parent().unwrap_or(Path::new("/"));
    // Before the read: a change between the read and the wait is not missed.
    let mut watch = DirWatch::new(dir);
    loop {
        match read_pid_file(path) {
            Ok(Some(pid)) if wait.refused != Some(pid) => return pid,
            Ok(_) => {}
            Err(e) => wait.problem = Some(error_chain(&e)),
        }
        watch.changed().await;
    }
}

/// `60s` for whole seconds (as the config says it), else the usual short form.
fn fmt_whole(d: Duration) -> String {
    if d.subsec_nanos() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        fmt_duration(d)
    }
}
