//! [`DirWatch`]: wake up when the entries of a directory may have changed, so that a
//! `pid_file` is read again. On Windows this is a re-check after a backoff (5 ms doubling up
//! to 200 ms); the same signature as on Unix, where Linux uses inotify.

use std::path::Path;
use std::time::Duration;

/// The first re-check.
const RECHECK_FIRST: Duration = Duration::from_millis(5);
/// The longest time between two re-checks.
const RECHECK_MAX: Duration = Duration::from_millis(200);

/// Watches one directory (by re-checks).
#[derive(Debug)]
pub struct DirWatch {
    backoff: Duration,
}

impl DirWatch {
    /// Watch `dir`; never fails.
    pub fn new(_dir: &Path) -> DirWatch {
        DirWatch {
            backoff: RECHECK_FIRST,
        }
    }

    /// Wait for the next re-check.
    pub async fn changed(&mut self) {
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(RECHECK_MAX);
    }
}
