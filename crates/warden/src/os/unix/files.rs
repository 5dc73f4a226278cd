//! The files install writes and uninstall removes: written atomically with their mode,
//! recorded so that a failed install takes them back, and never a file install did not
//! write (see [`classify`]).

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::spec::GENERATED;
use crate::Failure;

/// What is at an instance's config path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Missing,
    /// A `-c` install's symlink to the config it runs.
    Pointer(PathBuf),
    /// The quick form's config: its first line is [`GENERATED`].
    Generated,
    /// A file somebody else wrote.
    Mine,
}

pub fn classify(path: &Path) -> Entry {
    let Ok(meta) = path.symlink_metadata() else {
        return Entry::Missing;
    };
    if meta.file_type().is_symlink() {
        let target = fs::read_link(path).unwrap_or_default();
        let dir = path.parent().unwrap_or(Path::new("/"));
        return Entry::Pointer(dir.join(target));
    }
    let first = fs::read_to_string(path).unwrap_or_default();
    if first.starts_with(GENERATED) {
        Entry::Generated
    } else {
        Entry::Mine
    }
}

fn fail(what: &str, path: &Path, e: &std::io::Error) -> Failure {
    let hint = if e.kind() == ErrorKind::PermissionDenied {
        " (a system-wide install needs root: sudo, or --scope user)"
    } else {
        ""
    };
    Failure::failed(format!("cannot {what} {}: {e}{hint}", path.display()))
}

/// Remove a file or symlink; one that is already gone is fine.
pub fn remove_file(path: &Path) -> Result<(), Failure> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(fail("remove", path, &e)),
        _ => Ok(()),
    }
}

/// Remove a folder and everything in it; `false` when there was none.
pub fn remove_tree(dir: &Path) -> Result<bool, Failure> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(fail("remove", dir, &e)),
    }
}

/// Remove a folder if it is empty; whether it was removed.
pub fn remove_empty_dir(dir: &Path) -> bool {
    fs::remove_dir(dir).is_ok()
}

/// Give `path` to the account `uid`:`gid` (`--user`).
pub fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), Failure> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|e| fail("give the account", path, &e))
}

/// What install wrote, in order, so that a failure can take it back.
#[derive(Debug, Default)]
pub struct Written {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Written {
    /// Create `dir` and its missing parents (each recorded) with `mode`; `owner` gets
    /// `dir` itself (`--user`).
    pub fn create_dir(
        &mut self,
        dir: &Path,
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<(), Failure> {
        let mut missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
        missing.reverse();
        for d in missing {
            let parent_mode = if d == dir { mode } else { 0o755 };
            fs::DirBuilder::new()
                .mode(parent_mode)
                .create(d)
                .map_err(|e| fail("create", d, &e))?;
            // The umask may have taken bits away.
            fs::set_permissions(d, fs::Permissions::from_mode(parent_mode))
                .map_err(|e| fail("set the mode of", d, &e))?;
            self.dirs.push(d.to_path_buf());
        }
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                .map_err(|e| fail("give the account", dir, &e))?;
        }
        Ok(())
    }

    /// Write `text` to `path` atomically (a partial file, then a rename) with `mode`.
    pub fn write_file(&mut self, path: &Path, text: &str, mode: u32) -> Result<(), Failure> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let written = fs::write(&partial, text)
            .and_then(|()| fs::set_permissions(&partial, fs::Permissions::from_mode(mode)))
            .and_then(|()| fs::rename(&partial, path));
        if let Err(e) = written {
            let _ = fs::remove_file(&partial);
            return Err(fail("write", path, &e));
        }
        self.files.push(path.to_path_buf());
        Ok(())
    }

    /// A symlink at `link` to `target`.
    pub fn symlink(&mut self, target: &Path, link: &Path) -> Result<(), Failure> {
        std::os::unix::fs::symlink(target, link).map_err(|e| fail("create", link, &e))?;
        self.files.push(link.to_path_buf());
        Ok(())
    }

    /// Remove everything recorded, newest first (folders only if empty).
    pub fn undo(&self) {
        for f in self.files.iter().rev() {
            let _ = fs::remove_file(f);
        }
        for d in self.dirs.iter().rev() {
            let _ = fs::remove_dir(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_takes_back_every_file_and_folder_created() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut w = Written::default();
        let deep = tmp.path().join("a/b/c");
        w.create_dir(&deep, 0o700, None).expect("mkdir");
        assert_eq!(
            fs::metadata(&deep).expect("meta").permissions().mode() & 0o777,
            0o700
        );
        w.write_file(&deep.join("f.toml"), "x", 0o644)
            .expect("write");
        w.symlink(Path::new("/etc/hostname"), &tmp.path().join("a/link"))
            .expect("link");
        assert_eq!(
            classify(&tmp.path().join("a/link")),
            Entry::Pointer("/etc/hostname".into())
        );
        assert_eq!(classify(&deep.join("f.toml")), Entry::Mine);
        w.undo();
        assert!(!tmp.path().join("a").exists());
    }

    #[test]
    fn generated_files_are_told_apart_by_their_first_line() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let p = tmp.path().join("warden.toml");
        assert_eq!(classify(&p), Entry::Missing);
        fs::write(&p, format!("{GENERATED} x`\n")).expect("write");
        assert_eq!(classify(&p), Entry::Generated);
    }
}
