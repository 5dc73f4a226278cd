//! warden's own log (`<state_dir>/warden.log`): its event lines, rotated by size like a
//! service's log. It is the same writer ([`Sink`]) as a service's: rotation, the bounded
//! buffer and the dropped-bytes marker while the file cannot be written.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use super::writer::{FileSettings, Sink};

/// warden's own log file.
pub struct OwnLog {
    sink: Arc<Sink>,
}

impl std::fmt::Debug for OwnLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnLog")
            .field("path", &self.sink.path())
            .finish_non_exhaustive()
    }
}

impl OwnLog {
    /// Open `path` for appending, rotated once it reaches `max_size` bytes, `keep` rotated
    /// files kept (`warden.log.1` the newest). A file that cannot be written is retried; the
    /// reason goes to stderr, the last resort.
    pub fn open(path: &Path, max_size: u64, keep: u32) -> OwnLog {
        let settings = FileSettings {
            max_size,
            keep,
            compress: false,
            timestamps: false,
        };
        let reporter: super::Reporter = Arc::new(|msg: &str| {
            let _ = writeln!(std::io::stderr(), "[warden] {msg}");
        });
        OwnLog {
            sink: Sink::open(path, settings, reporter),
        }
    }

    /// Append whole lines (each ending in `\n`).
    pub fn write(&self, lines: &[u8]) {
        self.sink.write(lines);
    }

    /// Why the file is not being written right now, if it is not.
    pub fn problem(&self) -> Option<String> {
        self.sink.problem()
    }
}
