//! Rotated files that an earlier warden left uncompressed (`BASE.rotating-N`), found with
//! one listing per log directory rather than one per log file: 1,000 services open 2,000
//! files in one directory, and a listing per file made their start quadratic.
//!
//! A directory is listed the first time one of its files is opened in this process. Every
//! leftover is from an earlier run by then (this process's own rotations come later, and
//! their compressor owns them), so what the listing found is all there is to adopt.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, PoisonError};

/// The mark between a log file's name and its rotation number.
pub(super) const TEMP_MARK: &str = ".rotating-";

/// Per listed directory: per base file name, its leftovers not yet adopted.
type Found = HashMap<OsString, Vec<(u64, PathBuf)>>;

static LISTED: LazyLock<Mutex<HashMap<PathBuf, Found>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The leftovers of `base`, oldest first, each handed out once; half-written `.gz` files
/// of the directory are removed when it is listed.
pub(super) fn take(base: &Path) -> Vec<(u64, PathBuf)> {
    let (Some(dir), Some(name)) = (base.parent(), base.file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut listed = LISTED.lock().unwrap_or_else(PoisonError::into_inner);
    let found = listed.entry(dir.to_path_buf()).or_insert_with(|| list(dir));
    let mut mine = found.remove(name).unwrap_or_default();
    mine.sort();
    mine
}

fn list(dir: &Path) -> Found {
    let mut found = Found::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let Some((name, rest)) = file_name.rsplit_once(TEMP_MARK) else {
            continue;
        };
        if Path::new(rest).extension().is_some_and(|e| e == "gz") {
            let _ = fs::remove_file(entry.path());
        } else if let Ok(n) = rest.parse::<u64>() {
            found
                .entry(OsString::from(name))
                .or_default()
                .push((n, entry.path()));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_base_gets_its_own_leftovers_once_and_half_written_gz_files_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |n: &str| dir.path().join(n);
        for n in [
            "a.out.log.rotating-3",
            "a.out.log.rotating-1",
            "a.out.log.rotating-2.gz",
            "b.err.log.rotating-0",
            "a.out.log",
            "a.out.log.1.gz",
        ] {
            fs::write(p(n), "x").expect("write");
        }
        let a = take(&p("a.out.log"));
        assert_eq!(
            a,
            vec![
                (1, p("a.out.log.rotating-1")),
                (3, p("a.out.log.rotating-3"))
            ]
        );
        assert!(!p("a.out.log.rotating-2.gz").exists());
        assert!(p("a.out.log.1.gz").exists());
        assert_eq!(take(&p("b.err.log")), vec![(0, p("b.err.log.rotating-0"))]);
        assert!(take(&p("a.out.log")).is_empty(), "handed out once");
        assert!(take(&p("c.out.log")).is_empty());
    }
}
