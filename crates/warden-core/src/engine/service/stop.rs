//! Ending a run's whole tree: the graceful steps (`stop_command`, or the stop signal / the
//! Windows `stop_method` steps) within `stop_timeout`, then a kill of whatever remains.
//! Portable: the per-OS steps come from the spawner ([`crate::process::stop_steps`] for
//! the real one).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Level, Run, ServiceTask, error_chain};
use crate::engine::spawner::Proc;
use crate::process::{ExitStatus, Output, StepOutcome};
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
        let mut cmd_pumps = Vec::new();
        let already_gone =
            run.child.exit_status().is_some() && run.child.wait_tree_gone(Duration::ZERO).await;
        if !already_gone {
            let (left, cmd) = self.graceful(&mut run, &mut kill_now).await;
            if let Some((cmd, pumps)) = cmd {
                stop_cmd = Some(cmd);
                cmd_pumps = pumps;
            }
            if let Some(left) = left {
                if asked && !*kill_now.borrow() {
                    let why = match left {
                        Left::TimedOut => format!("did not stop within {}", fmt_duration(timeout)),
                        Left::NoStepApplies { tried, after } => format!(
                            "no graceful stop step applies ({tried}); after {}",
                            fmt_duration(after)
                        ),
                    };
                    self.emit(Level::Warn, &format!("{why}; killing"));
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
        for pump in cmd_pumps {
            let _ = tokio::time::timeout(AFTER_KILL, pump).await;
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
    /// if there is one (its output goes to the service's log as warden lines; if it fails,
    /// the stop signal follows at once, within the time left), else each of the spawner's
    /// [`Spawner::stop_steps`](crate::engine::spawner::Spawner::stop_steps). A step that
    /// cannot apply (no console for Ctrl-C, no window for `WM_CLOSE`) takes no time; an
    /// applied step gets an equal share of the time still left among it and the steps after
    /// it, so what an early step leaves goes to the next; after the last step, warden waits
    /// for the tree until the `stop_timeout` deadline. Returns `None` when the whole tree is
    /// gone, else why it is not ([`Left`]); and the stop command's process and output pumps
    /// if one was started.
    async fn graceful(
        &self,
        run: &mut Run,
        kill_now: &mut watch::Receiver<bool>,
    ) -> (Option<Left>, Option<StopCommand>) {
        let timeout = self.cfg.stop_timeout;
        let started = Instant::now();
        let deadline = super::deadline_after(timeout);
        let gone_or_timed_out = |gone: bool| (!gone).then_some(Left::TimedOut);
        let mut stop_cmd = None;
        if let Some(cmd) = &self.cfg.stop_command {
            let mut spec = self.spawn_spec();
            if let Some((program, args)) = cmd.split_first() {
                spec.program = program.into();
                spec.args = args.iter().map(Into::into).collect();
            }
            spec.env
                .push(("WARDEN_PID".into(), run.child.pid().to_string().into()));
            spec.output = Output::Separate;
            match self.ctx.spawner.spawn(&spec) {
                Ok(mut c) => {
                    let pumps = self.pump_stop_command(c.as_mut());
                    let ended = tokio::select! {
                        gone = wait_gone_or_kill_now(&mut run.child, timeout, kill_now) => {
                            return (gone_or_timed_out(gone), Some((c, pumps)));
                        }
                        status = c.wait() => status,
                    };
                    if ended == ExitStatus::Code(0) {
                        let left = deadline.saturating_duration_since(Instant::now());
                        let gone = wait_gone_or_kill_now(&mut run.child, left, kill_now).await;
                        return (gone_or_timed_out(gone), Some((c, pumps)));
                    }
                    self.emit(
                        Level::Warn,
                        &format!("stop_command exited with {ended}; sending the stop signal now"),
                    );
                    stop_cmd = Some((c, pumps));
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
        let steps = self
            .ctx
            .spawner
            .stop_steps(self.cfg.stop_signal, &self.cfg.stop_method);
        let mut applied = false;
        for (i, &step) in steps.iter().enumerate() {
            match run.child.request_stop(step).await {
                Ok(StepOutcome::Applied) => {}
                Ok(StepOutcome::NotApplicable) => continue,
                // Not known to have missed the program (a signal to a group that is
                // going): it waits its share like a delivered step.
                Err(e) => self.emit(
                    Level::Warn,
                    &format!("cannot send {step} to group {}: {e}", run.child.pid()),
                ),
            }
            applied = true;
            let share = deadline.saturating_duration_since(Instant::now())
                / u32::try_from(steps.len() - i).unwrap_or(u32::MAX);
            if wait_gone_or_kill_now(&mut run.child, share, kill_now).await {
                return (None, stop_cmd);
            }
            if *kill_now.borrow() {
                return (Some(Left::TimedOut), stop_cmd);
            }
        }
        if !applied {
            let tried = if steps.is_empty() {
                "stop_method has none".to_owned()
            } else {
                steps
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let after = started.elapsed();
            return (Some(Left::NoStepApplies { tried, after }), stop_cmd);
        }
        // The steps after the last applied one could not apply: their shares are the last
        // applied step's too.
        let rest = deadline.saturating_duration_since(Instant::now());
        let gone = wait_gone_or_kill_now(&mut run.child, rest, kill_now).await;
        (gone_or_timed_out(gone), stop_cmd)
    }

    /// Send the stop command's stdout and stderr to the service's log, each line prefixed
    /// `[warden] stop_command: ` (through the service's own pump, so rotation, timestamps
    /// and followers treat them like the program's lines).
    fn pump_stop_command(&self, cmd: &mut dyn Proc) -> Vec<JoinHandle<()>> {
        let (out_w, out_r) = tokio::io::duplex(PREFIX_BUFFER);
        let (err_w, err_r) = tokio::io::duplex(PREFIX_BUFFER);
        let mut pumps = vec![self.logs.pump_pair(Some(out_r), Some(err_r))];
        for (pipe, w) in [(cmd.take_stdout(), out_w), (cmd.take_stderr(), err_w)] {
            if let Some(pipe) = pipe {
                pumps.push(tokio::spawn(prefix_lines(pipe, w)));
            }
        }
        pumps
    }
}

/// Why the graceful steps left part of the tree running, for the event line of the kill.
enum Left {
    /// `stop_timeout` passed (or a second Ctrl-C asked to kill at once).
    TimedOut,
    /// None of the graceful steps could apply (`tried`, as the event line names them), so
    /// the kill follows `after` this long instead of waiting out `stop_timeout`.
    NoStepApplies { tried: String, after: Duration },
}

/// A stop command's process and the tasks that carry its output to the log.
type StopCommand = (Box<dyn Proc>, Vec<JoinHandle<()>>);

/// What starts each line of a stop command's output in the service's log.
const STOP_COMMAND_PREFIX: &[u8] = b"[warden] stop_command: ";
/// The buffer between a stop command's pipe and the service's pump.
const PREFIX_BUFFER: usize = 64 << 10;

/// Copy `pipe` to `w`, with [`STOP_COMMAND_PREFIX`] at the start of every line.
async fn prefix_lines<R, W>(mut pipe: R, mut w: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 8 << 10];
    let mut at_line_start = true;
    let mut out = Vec::with_capacity(buf.len() + STOP_COMMAND_PREFIX.len());
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        out.clear();
        for piece in buf[..n].split_inclusive(|b| *b == b'\n') {
            if at_line_start {
                out.extend_from_slice(STOP_COMMAND_PREFIX);
            }
            out.extend_from_slice(piece);
            at_line_start = piece.ends_with(b"\n");
        }
        if w.write_all(&out).await.is_err() {
            break;
        }
    }
    let _ = w.shutdown().await;
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
