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
        keep_private(self.sink.path());
    }

    /// Why the file is not being written right now, if it is not.
    pub fn problem(&self) -> Option<String> {
        self.sink.problem()
    }
}

/// `warden.log` may quote the config: 0600, like the one `up -d` creates, also after a
/// rotation made a fresh file (the writer creates log files 0640). Events are rare: one
/// `lstat` each.
fn keep_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::symlink_metadata(path)
            && meta.is_file()
            && meta.permissions().mode() & 0o077 != 0
        {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
    }
    #[cfg(not(unix))]
    let _ = path; // Windows: the folder's ACL decides.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_rotates_by_size_and_keeps_keep_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("warden.log");
        let log = OwnLog::open(&path, 1024, 2);
        for i in 0..100 {
            log.write(format!("[warden] event {i:03} {}\n", "x".repeat(80)).as_bytes());
        }
        assert_eq!(log.problem(), None);
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).expect(name);
        let (now, one, two) = (
            read("warden.log"),
            read("warden.log.1"),
            read("warden.log.2"),
        );
        assert!(!dir.path().join("warden.log.3").exists());
        #[cfg(unix)]
        for name in ["warden.log", "warden.log.1", "warden.log.2"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(name))
                .expect(name)
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        for text in [&now, &one, &two] {
            assert!(text.len() <= 1024 && text.ends_with('\n'), "{text}");
        }
        assert!(now.contains("event 099"), "{now}");
        let last = |t: &str| t.lines().last().map(|l| l[15..18].to_owned());
        let first = |t: &str| t.lines().next().map(|l| l[15..18].to_owned());
        // The newest rotated file ends right where the current one begins.
        let n: u32 = last(&one).expect("lines").parse().expect("number");
        assert_eq!(first(&now), Some(format!("{:03}", n + 1)));
    }
}
