//! The quick form, `warden install NAME -- PROGRAM ARGS...`: the generated config in
//! `%ProgramData%\warden\NAME`, and the checks of the name and the program it needs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::super::acl;
use super::usage;
use crate::Failure;
pub(super) use crate::os::quick::check_name;
use crate::os::quick::{Extras, literal};

/// `%ProgramData%` (`C:\ProgramData` if unset).
fn program_data() -> PathBuf {
    std::env::var_os("ProgramData").map_or_else(|| PathBuf::from(r"C:\ProgramData"), PathBuf::from)
}

/// `%ProgramData%\warden\NAME`: the quick form's config, logs and state.
pub(super) fn instance_dir(name: &str) -> PathBuf {
    program_data().join("warden").join(name)
}

/// The config of `warden install NAME -- PROGRAM ARGS...`: one service NAME running the
/// program (absolute) in `--cwd` or the program's folder, with the `--env` variables; logs
/// and state under `dir`. Nothing in it is expanded (`$` is doubled).
pub fn quick_config(
    name: &str,
    program: &Path,
    args: &[String],
    extras: &Extras,
    dir: &Path,
) -> String {
    let lit = |p: &Path| literal(&p.to_string_lossy());
    let mut command = vec![lit(program)];
    command.extend(args.iter().map(|a| literal(a)));
    let cwd = extras
        .cwd
        .as_deref()
        .or_else(|| program.parent())
        .unwrap_or(dir);
    format!(
        "# Written by `warden install {name}`; edit it, then `sc control {name} paramchange`\n\
         # (or `warden reload -n {name}`) applies the change.\n\
         \n\
         [warden]\n\
         log_dir = {}\n\
         state_dir = {}\n\
         \n\
         [services.{name}]\n\
         command = [{}]\n\
         cwd = {}\n\
         {}",
        lit(&dir.join("logs")),
        lit(&dir.join("state")),
        command.join(", "),
        lit(cwd),
        extras.env_line(),
    )
}

/// The program of the quick form as an absolute path: a path as given (made absolute), a
/// bare name searched in `PATH` with `PATHEXT` (the service will not have the installing
/// user's `PATH`).
fn resolve_program(program: &str) -> Result<PathBuf, Failure> {
    let p = Path::new(program);
    let not_found = || usage(format!("program not found: {program}"));
    if p.components().count() > 1 || p.is_absolute() {
        let abs = std::path::absolute(p).map_err(|_| not_found())?;
        return if abs.is_file() {
            Ok(abs)
        } else {
            Err(not_found())
        };
    }
    let exts: Vec<String> = std::env::var("PATHEXT")
        .unwrap_or_else(|_| ".COM;.EXE;.BAT;.CMD".to_owned())
        .split(';')
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect();
    let mut dirs = vec![std::env::current_dir().unwrap_or_default()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    for dir in dirs {
        let plain = dir.join(p);
        if p.extension().is_some() && plain.is_file() {
            return Ok(plain);
        }
        for ext in &exts {
            let mut name = OsString::from(p.as_os_str());
            name.push(ext);
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(not_found())
}

pub(super) fn write_quick_config(
    name: &str,
    program: &[String],
    extras: &Extras,
) -> Result<PathBuf, Failure> {
    let Some((prog, args)) = program.split_first() else {
        return Err(usage("no program given after `--`"));
    };
    let prog = resolve_program(prog)?;
    let dir = instance_dir(name);
    std::fs::create_dir_all(dir.join("logs"))
        .map_err(|e| Failure::failed(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join("warden.toml");
    let text = quick_config(name, &prog, args, extras, &dir);
    // A partial file, then a rename: a failed write never leaves half a config.
    let partial = dir.join("warden.toml.partial");
    // `--env` values are secrets: the file gets a DACL of its own (SYSTEM, Administrators;
    // install adds the service's account) before they are written into it.
    let private = |p: &Path| {
        if extras.env.is_empty() {
            Ok(())
        } else {
            acl::set_dacl_sddl(p, acl::PRIVATE_SDDL)
        }
    };
    std::fs::write(&partial, "")
        .and_then(|()| private(&partial))
        .and_then(|()| std::fs::write(&partial, text))
        .and_then(|()| std::fs::rename(&partial, &path))
        .map_err(|e| Failure::failed(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use warden_core::config::{self, ProcessEnv};

    use super::*;

    #[test]
    fn quick_config_is_a_valid_config() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("warden").join("sync");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let prog = tmp.path().join("bin dir").join("sync.exe");
        std::fs::create_dir_all(tmp.path().join("bin dir")).expect("mkdir");
        let extras = Extras {
            env: vec![("TOKEN".into(), "a$b".into())],
            cwd: Some(tmp.path().to_path_buf()),
        };
        let text = quick_config(
            "sync",
            &prog,
            &["--flag".into(), r#"quote " and \ back $HOME"#.into()],
            &extras,
            &dir,
        );
        let path = dir.join("warden.toml");
        std::fs::write(&path, &text).expect("write");
        let config = config::load(&path, &ProcessEnv).expect("valid config");
        assert_eq!(config.warden.log_dir, dir.join("logs"));
        assert_eq!(config.warden.state_dir, dir.join("state"));
        let svc = config.service("sync").expect("service");
        assert_eq!(
            svc.command,
            [
                prog.to_string_lossy().into_owned(),
                "--flag".to_owned(),
                r#"quote " and \ back $HOME"#.to_owned()
            ]
        );
        assert_eq!(svc.cwd, tmp.path());
        assert_eq!(svc.env.get("TOKEN").map(String::as_str), Some("a$b"));
    }

    #[test]
    fn quick_config_writes_windows_paths_escaped() {
        let text = quick_config(
            "sync",
            Path::new(r"C:\Tools\sync.exe"),
            &[],
            &Extras::default(),
            Path::new(r"C:\ProgramData\warden\sync"),
        );
        assert!(
            text.contains(r#"log_dir = "C:\\ProgramData\\warden\\sync\\logs""#),
            "{text}"
        );
        assert!(
            text.contains(r#"command = ["C:\\Tools\\sync.exe"]"#),
            "{text}"
        );
        assert!(text.contains(r#"cwd = "C:\\Tools""#), "{text}");
    }
}
