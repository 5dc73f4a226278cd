//! The seam between the engine and the OS: the engine starts and ends processes only through
//! a [`Spawner`] and the [`Proc`]s it returns. [`OsSpawner`] is the real one (the portable
//! [`crate::process`] layer); the engine's unit tests use a recording fake, so that every
//! decision (start, crash, backoff, start limit, stop, reload) is tested without a process
//! and under tokio's paused clock.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use crate::process::{self, Child, ExitStatus, GroupRecord, OutputPipe, SpawnError, SpawnSpec};

/// A boxed future, for the object-safe traits of this module.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Starts processes.
pub trait Spawner: Send + Sync + 'static {
    fn spawn(&self, spec: &SpawnSpec) -> Result<Box<dyn Proc>, SpawnError>;
    /// The graceful steps of a stop for a service's config, in order: this OS's
    /// [`process::stop_steps`] (a fake may give another OS's, so that the engine's timing of
    /// the Windows steps is tested everywhere).
    fn stop_steps(
        &self,
        stop_signal: process::Signal,
        stop_method: &[crate::model::StopMethod],
    ) -> Vec<process::StopStep> {
        process::stop_steps(stop_signal, stop_method)
    }
}

/// A started process and its whole tree (process group, job), as the engine sees it.
pub trait Proc: Send + Sync {
    /// The pid of the main process.
    fn pid(&self) -> u32;
    /// What the state dir records, so that a later warden can end a tree left behind.
    fn group_record(&self, service: &str) -> GroupRecord;
    /// Whether the start must be recorded at all: not for a tree held in a cgroup of its
    /// own, which a later warden finds (and kills) through the instance's cgroups.
    fn needs_record(&self) -> bool {
        true
    }
    fn take_stdout(&mut self) -> Option<OutputPipe>;
    fn take_stderr(&mut self) -> Option<OutputPipe>;
    /// Wait for the main process to exit; cancel-safe, and after the exit it answers at once.
    fn wait(&mut self) -> BoxFuture<'_, ExitStatus>;
    /// The main process's status once it exited.
    fn exit_status(&self) -> Option<ExitStatus>;
    /// Wait until nothing of the tree is left, at most `timeout`: `true` if nothing is.
    fn wait_tree_gone(&mut self, timeout: Duration) -> BoxFuture<'_, bool>;
    /// Ask the tree to stop by one graceful step (a signal to the group, a Ctrl-C, a
    /// `WM_CLOSE`). [`process::StepOutcome::NotApplicable`]: this step cannot reach the
    /// program (no window for `WM_CLOSE`), so it takes no time.
    fn request_stop(
        &self,
        step: process::StopStep,
    ) -> BoxFuture<'_, io::Result<process::StepOutcome>>;
    /// Kill the whole tree at once.
    fn kill_tree(&self) -> io::Result<()>;
    /// Why the service's confinement is not all in force (no cgroup of its own, a hard
    /// limit not applied): warnings for its events.
    fn confinement_notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// Make `pid` the main process from now on (a daemon named by `pid_file`, or adopted);
    /// refused unless it belongs to this tree.
    fn follow(&mut self, pid: u32) -> io::Result<()>;
    /// What the main process that just exited left behind, attributed to this service.
    fn find_daemon(&self) -> process::Adoption;
}

/// The real spawner: [`process::spawn`].
#[derive(Debug, Clone, Copy, Default)]
pub struct OsSpawner;

impl Spawner for OsSpawner {
    fn spawn(&self, spec: &SpawnSpec) -> Result<Box<dyn Proc>, SpawnError> {
        process::spawn(spec).map(|c| Box::new(c) as Box<dyn Proc>)
    }
}

impl Proc for Child {
    fn pid(&self) -> u32 {
        Child::pid(self)
    }

    fn group_record(&self, service: &str) -> GroupRecord {
        Child::group_record(self, service)
    }

    fn needs_record(&self) -> bool {
        Child::needs_record(self)
    }

    fn take_stdout(&mut self) -> Option<OutputPipe> {
        Child::take_stdout(self)
    }

    fn take_stderr(&mut self) -> Option<OutputPipe> {
        Child::take_stderr(self)
    }

    fn wait(&mut self) -> BoxFuture<'_, ExitStatus> {
        Box::pin(Child::wait(self))
    }

    fn exit_status(&self) -> Option<ExitStatus> {
        Child::exit_status(self)
    }

    fn wait_tree_gone(&mut self, timeout: Duration) -> BoxFuture<'_, bool> {
        Box::pin(Child::wait_tree_gone(self, timeout))
    }

    fn request_stop(
        &self,
        step: process::StopStep,
    ) -> BoxFuture<'_, io::Result<process::StepOutcome>> {
        Box::pin(Child::apply_stop_step(self, step))
    }

    fn kill_tree(&self) -> io::Result<()> {
        Child::kill_tree(self)
    }

    fn confinement_notes(&self) -> Vec<String> {
        Child::confinement_notes(self)
    }

    fn follow(&mut self, pid: u32) -> io::Result<()> {
        Child::follow(self, pid)
    }

    fn find_daemon(&self) -> process::Adoption {
        Child::find_daemon(self)
    }
}
