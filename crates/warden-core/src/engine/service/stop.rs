//! Ending a run's whole tree: the graceful steps (`stop_command`, or the stop signal / the
//! Windows `stop_method` steps) within `stop_timeout`, then a kill of whatever remains.
//! Portable: the per-OS steps come from [`process::stop_steps`].

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{Level, Run, ServiceTask, error_chain};
use crate::engine::spawner::Proc;
use crate::process::{self, ExitStatus, Output, StepOutcome};
use crate::util::fmt_duration;

/// How long a kill, a stop command's end and a pump's last line may take at most.
const AFTER_KILL: Duration = Duration::from_secs(5);

impl ServiceTask {
    /// End a run's whole tree: first the graceful steps (`stop_command` or `stop_signal`, up
    /// to `stop_timeout`), to the main process or, after it exited on its own, to what is left
    /// of its group; then a kill of whatever remains. `asked`: a stop was asked for, so a
    /// kill after the timeout is reported. Returns the main process's status.
    pub(super) async fn end_tree(&mut self, mut run: Run, asked: bool) -> Option<ExitStatus> {
        let timeout = self.cfg.stop_timeout;
        let mut kill_now = self.ctx.kill_now.clone();
        let mut stop_cmd = None;
        let already_gone =
            run.child.exit_status().is_some() && run.child.wait_tree_gone(Duration::ZERO).await;
        if !already_gone {
            let (gone, cmd) = self.graceful(&mut run, &mut kill_now).await;
            stop_cmd = cmd;
            if !gone {
                if asked && !*kill_now.borrow() {
                    self.emit(
                        Level::Warn,
                        &format!("did not stop within {}; killing", fmt_duration(timeout)),
                    );
                }
                if let Err(e) = run.child.kill_tree() {
                    self.emit(
                        Level::Warn,
                        &format!("cannot kill process group {}: {e}", run.child.pid()),
                    );
                }
                if !run.child.wait_tree_gone(AFTER_KILL).await {
                    self.emit(
                        Level::Bad,
                        &format!("processes of group {} survive SIGKILL", run.child.pid()),
                    );
                }
            }
        }
        if let Some(mut cmd) = stop_cmd {
            if cmd.exit_status().is_none() {
                let _ = cmd.kill_tree();
            }
            let _ = tokio::time::timeout(AFTER_KILL, cmd.wait_tree_gone(AFTER_KILL)).await;
        }
        let status = run.child.exit_status();
        if let Err(e) = self.ctx.state.clear_group(self.name()) {
            self.emit(
                Level::Warn,
                &format!("cannot clear the record of group {}: {e}", run.child.pid()),
            );
        }
        // The tree is gone, so every writer of the pipes is closed: the pumps end at once,
        // after writing a last line without newline.
        for pump in run.pumps.drain(..) {
            let _ = tokio::time::timeout(AFTER_KILL, pump).await;
        }
        status
    }

    /// The graceful steps, within `stop_timeout` (or until a second Ctrl-C): `stop_command`
    /// if there is one, else each of [`process::stop_steps`]; a step that cannot apply takes
    /// no time, and each step gets an equal share of the time still left. Returns whether
    /// the whole tree is gone, and the stop command's process if one was started.
    async fn graceful(
        &self,
        run: &mut Run,
        kill_now: &mut watch::Receiver<bool>,
    ) -> (bool, Option<Box<dyn Proc>>) {
        let timeout = self.cfg.stop_timeout;
        if let Some(cmd) = &self.cfg.stop_command {
            let mut spec = self.spawn_spec();
            if let Some((program, args)) = cmd.split_first() {
                spec.program = program.into();
                spec.args = args.iter().map(Into::into).collect();
            }
            spec.env
                .push(("WARDEN_PID".into(), run.child.pid().to_string().into()));
            spec.output = Output::Null;
            match self.ctx.spawner.spawn(&spec) {
                Ok(c) => {
                    let gone = wait_gone_or_kill_now(&mut run.child, timeout, kill_now).await;
                    return (gone, Some(c));
                }
                Err(e) => self.emit(
                    Level::Warn,
                    &format!(
                        "stop_command failed: {}; using the stop signal",
                        error_chain(&e)
                    ),
                ),
            }
        }
        let steps = process::stop_steps(self.cfg.stop_signal, &self.cfg.stop_method);
        let deadline = super::deadline_after(timeout);
        let mut left = steps.len();
        for step in steps {
            match run.child.request_stop(step).await {
                Ok(StepOutcome::Applied) => {}
                Ok(StepOutcome::NotApplicable) => {
                    left -= 1;
                    continue;
                }
                Err(e) => self.emit(
                    Level::Warn,
                    &format!("cannot send {step} to group {}: {e}", run.child.pid()),
                ),
            }
            let share = deadline.saturating_duration_since(Instant::now()) / left.max(1) as u32;
            left -= 1;
            if wait_gone_or_kill_now(&mut run.child, share, kill_now).await {
                return (true, None);
            }
            if *kill_now.borrow() {
                break;
            }
        }
        (false, None)
    }
}

/// Wait until the child's whole tree is gone (`true`), `timeout` passed or a second Ctrl-C
/// asked to kill at once (`false`).
async fn wait_gone_or_kill_now(
    child: &mut Box<dyn Proc>,
    timeout: Duration,
    kill_now: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        gone = child.wait_tree_gone(timeout) => gone,
        _ = kill_now.wait_for(|k| *k) => false,
    }
}
