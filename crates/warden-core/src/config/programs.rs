//! Is a service's program there? Each `command` and `stop_command` is resolved the way the
//! child's start resolves it: the same `PATH` (the service's `env` over warden's environment,
//! or `env` alone with `inherit_env = false`), the same `cwd`, the same rules (`execvp` on
//! Unix, warden's spawner on Windows). A program that would not be found is a *warning*, not
//! an error: it may appear before the start (a build job, a mounted volume), and one missing
//! binary must never make `reload` refuse a whole config.
//!
//! [`check_service`] is pure but for the [`Programs`] lookup it is given, so the rules are
//! unit-tested without a filesystem; [`FsPrograms`] is the real lookup.

use std::path::{Path, PathBuf};

use super::limits::MAX_PATH_SEARCH;
use super::{Env, ServiceConfig};

/// What is at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Probe {
    /// Nothing, or nothing warden may look at.
    Missing,
    /// A directory or another file that is not a regular one.
    NotAFile,
    /// A regular file without an executable bit (Unix).
    NotExecutable,
    /// A regular file that can be run (on Windows: any regular file; its extension is judged
    /// by the rules).
    Executable,
}

/// The "which programs exist" lookup: the filesystem in production, a table in tests.
pub(super) trait Programs {
    fn probe(&self, path: &Path) -> Probe;
}

/// The filesystem: a regular file (symlinks followed, as `exec` does), with an executable bit
/// on Unix. Each path is looked at once per load: 1,000 services of one program are one
/// `stat`, not 1,000 (every CLI command loads the config).
#[derive(Default)]
pub(super) struct FsPrograms {
    seen: std::cell::RefCell<std::collections::HashMap<PathBuf, Probe>>,
}

impl Programs for FsPrograms {
    fn probe(&self, path: &Path) -> Probe {
        if let Some(p) = self.seen.borrow().get(path) {
            return *p;
        }
        let probe = match std::fs::metadata(path) {
            Err(_) => Probe::Missing,
            Ok(meta) if !meta.is_file() => Probe::NotAFile,
            Ok(meta) if is_executable(&meta) => Probe::Executable,
            Ok(_) => Probe::NotExecutable,
        };
        self.seen.borrow_mut().insert(path.to_owned(), probe);
        probe
    }
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    true
}

/// How a program name becomes a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Rules {
    /// `execvp`: a name with a `/` is taken relative to the child's `cwd`; a bare name is
    /// searched in each `PATH` entry (an empty entry, or a relative one, is relative to the
    /// `cwd`); without a `PATH`, in the C library's default.
    #[cfg_attr(not(unix), allow(dead_code))] // built on Unix; unit-tested everywhere
    Unix { default_path: &'static str },
    /// warden's Windows spawner: a name with a directory part is relative to the `cwd`; a bare
    /// name is searched in `PATH`, then in `system_dirs`; a name without an extension gets
    /// `.exe`; the file found must have an extension of `PATHEXT`.
    Windows {
        system_dirs: Vec<PathBuf>,
        pathext: Vec<String>,
    },
}

/// `execvp`'s search path when the environment has no `PATH`.
#[cfg(all(unix, target_os = "macos"))]
const DEFAULT_PATH: &str = "/usr/bin:/bin";
#[cfg(all(unix, not(target_os = "macos"), target_env = "musl"))]
const DEFAULT_PATH: &str = "/usr/local/bin:/bin:/usr/bin";
#[cfg(all(unix, not(target_os = "macos"), not(target_env = "musl")))]
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// `PATHEXT` when warden's environment has none.
const DEFAULT_PATHEXT: &str = ".COM;.EXE;.BAT;.CMD";

impl Rules {
    /// The rules of the OS warden runs on; Windows reads `SystemRoot` and `PATHEXT` from
    /// warden's environment, as its spawner does.
    #[cfg(unix)]
    pub(super) fn host(_env: &dyn Env) -> Rules {
        Rules::Unix {
            default_path: DEFAULT_PATH,
        }
    }

    #[cfg(not(unix))]
    pub(super) fn host(env: &dyn Env) -> Rules {
        Rules::windows(env)
    }

    #[cfg_attr(unix, allow(dead_code))] // used on Windows, and by the tests everywhere
    pub(super) fn windows(env: &dyn Env) -> Rules {
        let root = env
            .var("SystemRoot")
            .or_else(|| env.var("windir"))
            .unwrap_or_else(|| r"C:\Windows".to_owned());
        let root = PathBuf::from(root);
        let pathext = env
            .var("PATHEXT")
            .filter(|p| !p.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_PATHEXT.to_owned());
        Rules::Windows {
            system_dirs: vec![root.join("System32"), root],
            pathext: pathext
                .split(';')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    fn windows_like(&self) -> bool {
        matches!(self, Rules::Windows { .. })
    }
}

/// Where the `PATH` the child sees comes from (for the hint; its value is never shown, as no
/// `env` value is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathFrom {
    /// The service's `env` (or `env_file`) sets it.
    Service,
    /// Inherited from warden's environment.
    Warden,
    /// Neither: `inherit_env = false` without a `PATH` in `env`, or warden has none.
    Nowhere,
}

/// The child's `PATH`: the service's own, else (with `inherit_env`) warden's.
fn child_path(svc: &ServiceConfig, env: &dyn Env, rules: &Rules) -> (Option<String>, PathFrom) {
    let own = svc.env.iter().find(|(k, _)| {
        if rules.windows_like() {
            k.eq_ignore_ascii_case("PATH")
        } else {
            k.as_str() == "PATH"
        }
    });
    if let Some((_, v)) = own {
        return (Some(v.clone()), PathFrom::Service);
    }
    if svc.inherit_env
        && let Some(v) = env.var("PATH")
    {
        return (Some(v), PathFrom::Warden);
    }
    (None, PathFrom::Nowhere)
}

/// Why a program would not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Problem {
    /// A bare name that no directory of the search holds.
    NotOnPath,
    /// The `PATH` has more than [`MAX_PATH_SEARCH`] entries and none of those holds it: the
    /// rest is not searched, so nothing can be said.
    Unknown,
    /// A name with a directory part: nothing at this path.
    Missing(PathBuf),
    /// A directory or another file that cannot be run.
    NotAFile(PathBuf),
    /// A regular file that is not executable (Unix: no `x` bit; Windows: its extension is
    /// not in `PATHEXT`).
    NotExecutable(PathBuf),
}

/// The file that starting `program` in `cwd`, with `path` as the child's `PATH`, runs.
pub(super) fn resolve(
    program: &str,
    cwd: &Path,
    path: Option<&str>,
    rules: &Rules,
    programs: &dyn Programs,
) -> Result<PathBuf, Problem> {
    match rules {
        Rules::Unix { default_path } => {
            if program.contains('/') {
                let file = join(cwd, program);
                return match programs.probe(&file) {
                    Probe::Executable => Ok(file),
                    Probe::Missing => Err(Problem::Missing(file)),
                    Probe::NotAFile => Err(Problem::NotAFile(file)),
                    Probe::NotExecutable => Err(Problem::NotExecutable(file)),
                };
            }
            // Like `execvp`: the first executable file wins; a file without permission is
            // remembered (EACCES) and the search goes on.
            let mut denied = None;
            let mut dirs = path.unwrap_or(default_path).split(':');
            for dir in dirs.by_ref().take(MAX_PATH_SEARCH) {
                let file = if dir.is_empty() {
                    join(cwd, program)
                } else {
                    join(cwd, Path::new(dir).join(program))
                };
                match programs.probe(&file) {
                    Probe::Executable => return Ok(file),
                    Probe::NotExecutable => {
                        denied.get_or_insert(file);
                    }
                    Probe::Missing | Probe::NotAFile => {}
                }
            }
            match denied {
                Some(file) => Err(Problem::NotExecutable(file)),
                None if dirs.next().is_some() => Err(Problem::Unknown),
                None => Err(Problem::NotOnPath),
            }
        }
        Rules::Windows {
            system_dirs,
            pathext,
        } => {
            let bytes = program.as_bytes();
            let has_dir = program.contains(['/', '\\']) || (bytes.len() > 1 && bytes[1] == b':');
            let with_exe = |base: PathBuf| {
                if base.extension().is_some() {
                    base
                } else {
                    let mut s = base.into_os_string();
                    s.push(".exe");
                    PathBuf::from(s)
                }
            };
            let runnable = |file: PathBuf| {
                let ext = file
                    .extension()
                    .map(|e| format!(".{}", e.to_string_lossy()))
                    .unwrap_or_default();
                if pathext.iter().any(|p| p.eq_ignore_ascii_case(&ext)) {
                    Ok(file)
                } else {
                    Err(Problem::NotExecutable(file))
                }
            };
            if has_dir {
                let file = with_exe(join(cwd, program));
                return match programs.probe(&file) {
                    Probe::Executable | Probe::NotExecutable => runnable(file),
                    Probe::Missing => Err(Problem::Missing(file)),
                    Probe::NotAFile => Err(Problem::NotAFile(file)),
                };
            }
            // As the spawner: the first regular file of PATH, then the system dirs.
            let mut entries = path
                .into_iter()
                .flat_map(|p| p.split(';'))
                .map(|d| d.trim().trim_matches('"'))
                .filter(|d| !d.is_empty());
            let dirs = entries
                .by_ref()
                .take(MAX_PATH_SEARCH)
                .map(PathBuf::from)
                .collect::<Vec<_>>();
            let truncated = entries.next().is_some();
            for dir in dirs.iter().chain(system_dirs) {
                let file = with_exe(dir.join(program));
                if matches!(
                    programs.probe(&file),
                    Probe::Executable | Probe::NotExecutable
                ) {
                    return runnable(file);
                }
            }
            Err(if truncated {
                Problem::Unknown
            } else {
                Problem::NotOnPath
            })
        }
    }
}

/// A warning about one key of a service, for the loader to place at that key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Finding {
    /// `command` or `stop_command`.
    pub key: &'static str,
    pub message: String,
    pub hint: Option<String>,
}

/// The programs of `svc` (`command`, `stop_command`) that would not start. `env` is warden's
/// environment, as the child inherits it.
pub(super) fn check_service(
    svc: &ServiceConfig,
    env: &dyn Env,
    rules: &Rules,
    programs: &dyn Programs,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let (path, from) = child_path(svc, env, rules);
    let commands = [
        ("command", Some(&svc.command)),
        ("stop_command", svc.stop_command.as_ref()),
    ];
    for (key, argv) in commands {
        let Some(program) = argv.and_then(|a| a.first()) else {
            continue;
        };
        let problem = match resolve(program, &svc.cwd, path.as_deref(), rules, programs) {
            Ok(_) | Err(Problem::Unknown) => continue,
            Err(problem) => problem,
        };
        let shell = key == "command" && svc.shell;
        findings.push(describe(key, program, shell, &problem, from, rules));
    }
    findings
}

fn describe(
    key: &'static str,
    program: &str,
    shell: bool,
    problem: &Problem,
    from: PathFrom,
    rules: &Rules,
) -> Finding {
    let what = if shell {
        format!("the shell \"{program}\" (shell = true)")
    } else {
        format!("program \"{program}\"")
    };
    let windows = rules.windows_like();
    let (message, hint) = match problem {
        Problem::NotOnPath | Problem::Unknown => {
            let searched = match (from, rules) {
                (PathFrom::Service, _) => "searched the PATH of the service's env".to_owned(),
                (PathFrom::Warden, _) => "searched the PATH warden passes on".to_owned(),
                (PathFrom::Nowhere, Rules::Unix { default_path }) => {
                    format!("the child gets no PATH, so {default_path} was searched")
                }
                (PathFrom::Nowhere, Rules::Windows { .. }) => "the child gets no PATH".to_owned(),
            };
            let extra = if windows {
                let exe = if Path::new(program).extension().is_none() {
                    "; a name without an extension gets .exe"
                } else {
                    ""
                };
                format!(" and the system directories{exe}")
            } else {
                String::new()
            };
            (
                format!("{key}: {what} is not found on PATH"),
                format!("{searched}{extra}; give the full path, or set PATH in env"),
            )
        }
        Problem::Missing(file) => {
            let at = at(program, file);
            // A relative program: say where it was looked for.
            let hint = (!at.is_empty())
                .then(|| "a relative program is taken from the service's cwd".to_owned());
            return Finding {
                key,
                message: format!("{key}: {what} does not exist{at}"),
                hint,
            };
        }
        Problem::NotAFile(file) => (
            format!("{key}: {what}{} is not a file", at(program, file)),
            "name the program itself".to_owned(),
        ),
        Problem::NotExecutable(file) => {
            let hint = if windows {
                "its extension is not one of PATHEXT".to_owned()
            } else {
                format!("chmod +x {}", file.display())
            };
            (
                format!("{key}: {what}{} is not executable", at(program, file)),
                hint,
            )
        }
    };
    Finding {
        key,
        message,
        hint: Some(hint),
    }
}

/// ` at FILE`, unless `program` already says it.
fn at(program: &str, file: &Path) -> String {
    if Path::new(program) == file {
        String::new()
    } else {
        format!(" at {}", file.display())
    }
}

/// `cwd/program` without its `.` components (`/srv/./run` is `/srv/run`).
fn join(cwd: &Path, program: impl AsRef<Path>) -> PathBuf {
    cwd.join(program).components().collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A filesystem of a few files.
    struct Fake(BTreeMap<PathBuf, Probe>);

    impl Fake {
        fn new(files: &[(&str, Probe)]) -> Fake {
            Fake(
                files
                    .iter()
                    .map(|(p, probe)| (PathBuf::from(p), *probe))
                    .collect(),
            )
        }
    }

    impl Programs for Fake {
        fn probe(&self, path: &Path) -> Probe {
            self.0.get(path).copied().unwrap_or(Probe::Missing)
        }
    }

    const UNIX: Rules = Rules::Unix {
        default_path: "/bin:/usr/bin",
    };

    fn service(command: &[&str]) -> ServiceConfig {
        let text = format!(
            "[services.s]\ncommand = [{}]\n",
            command
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("warden.toml");
        let config =
            crate::config::parse::load_text(&text, &path, &BTreeMap::new(), &Fake::new(&[]))
                .expect("valid config");
        let mut svc = config.services.into_iter().next().expect("one service");
        svc.cwd = PathBuf::from("/srv/app");
        svc.env.clear();
        svc
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_bare_name_is_found_on_warden_s_path() {
        let fs = Fake::new(&[("/usr/local/bin/tool", Probe::Executable)]);
        let r = resolve(
            "tool",
            Path::new("/srv"),
            Some("/opt:/usr/local/bin"),
            &UNIX,
            &fs,
        );
        assert_eq!(r, Ok(PathBuf::from("/usr/local/bin/tool")));
        let svc = service(&["tool"]);
        let warden = env(&[("PATH", "/usr/local/bin")]);
        assert_eq!(check_service(&svc, &warden, &UNIX, &fs), vec![]);
    }

    #[test]
    fn a_missing_program_is_a_finding_at_command() {
        let fs = Fake::new(&[]);
        let svc = service(&["nosuchprogram", "--flag"]);
        let warden = env(&[("PATH", "/usr/bin")]);
        let found = check_service(&svc, &warden, &UNIX, &fs);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].key, "command");
        assert_eq!(
            found[0].message,
            "command: program \"nosuchprogram\" is not found on PATH"
        );
        assert_eq!(
            found[0].hint.as_deref(),
            Some("searched the PATH warden passes on; give the full path, or set PATH in env")
        );
    }

    #[test]
    #[cfg(unix)] // Unix paths and the executable bit
    fn a_file_without_the_executable_bit_is_not_executable() {
        let fs = Fake::new(&[
            ("/a/tool", Probe::NotExecutable),
            ("/srv/app/run.sh", Probe::NotExecutable),
        ]);
        assert_eq!(
            resolve("tool", Path::new("/"), Some("/a:/b"), &UNIX, &fs),
            Err(Problem::NotExecutable(PathBuf::from("/a/tool")))
        );
        // execvp goes on past a file it may not run.
        let fs2 = Fake::new(&[
            ("/a/tool", Probe::NotExecutable),
            ("/b/tool", Probe::Executable),
        ]);
        assert_eq!(
            resolve("tool", Path::new("/"), Some("/a:/b"), &UNIX, &fs2),
            Ok(PathBuf::from("/b/tool"))
        );
        let found = check_service(&service(&["./run.sh"]), &env(&[]), &UNIX, &fs);
        assert_eq!(
            found[0].message,
            "command: program \"./run.sh\" at /srv/app/run.sh is not executable"
        );
        assert_eq!(found[0].hint.as_deref(), Some("chmod +x /srv/app/run.sh"));
    }

    #[test]
    fn a_huge_path_is_searched_only_so_far_and_then_not_warned_about() {
        let fs = Fake::new(&[("/d/tool", Probe::Executable)]);
        let huge = ":".repeat(1 << 20);
        assert_eq!(
            resolve("tool", Path::new("/"), Some(&huge), &UNIX, &fs),
            Err(Problem::Unknown)
        );
        let mut svc = service(&["tool"]);
        svc.env.insert("PATH".into(), huge.clone());
        assert_eq!(check_service(&svc, &env(&[]), &UNIX, &fs), vec![]);
        let rules = Rules::windows(&env(&[("SystemRoot", "/win")]));
        let huge = "x;".repeat(1 << 19);
        assert_eq!(
            resolve("tool", Path::new("/"), Some(&huge), &rules, &fs),
            Err(Problem::Unknown)
        );
        // Within the bound, a found program is found.
        let near = format!("{}/d", ":".repeat(MAX_PATH_SEARCH - 1));
        assert_eq!(
            resolve("tool", Path::new("/"), Some(&near), &UNIX, &fs),
            Ok(PathBuf::from("/d/tool"))
        );
    }

    #[test]
    fn a_directory_is_not_a_program() {
        let fs = Fake::new(&[
            ("/srv/app/bin", Probe::NotAFile),
            ("/a/bin", Probe::NotAFile),
        ]);
        assert_eq!(
            resolve("./bin", Path::new("/srv/app"), None, &UNIX, &fs),
            Err(Problem::NotAFile(PathBuf::from("/srv/app/bin")))
        );
        assert_eq!(
            resolve("bin", Path::new("/srv/app"), Some("/a"), &UNIX, &fs),
            Err(Problem::NotOnPath)
        );
    }

    #[test]
    fn the_service_s_env_path_is_searched_instead_of_warden_s() {
        let fs = Fake::new(&[("/opt/x/bin/tool", Probe::Executable)]);
        let mut svc = service(&["tool"]);
        let warden = env(&[("PATH", "/usr/bin")]);
        let found = check_service(&svc, &warden, &UNIX, &fs);
        assert_eq!(found.len(), 1, "not on warden's PATH");
        svc.env.insert("PATH".into(), "/opt/x/bin".into());
        assert_eq!(check_service(&svc, &warden, &UNIX, &fs), vec![]);
        // And the other way round: the service's PATH hides warden's.
        let fs = Fake::new(&[("/usr/bin/tool", Probe::Executable)]);
        let found = check_service(&svc, &warden, &UNIX, &fs);
        assert_eq!(
            found[0].hint.as_deref(),
            Some("searched the PATH of the service's env; give the full path, or set PATH in env")
        );
    }

    #[test]
    #[cfg(unix)] // Unix paths; Windows' rules have their own test
    fn a_relative_program_is_taken_from_the_cwd() {
        let fs = Fake::new(&[("/srv/app/bin/api", Probe::Executable)]);
        let mut svc = service(&["bin/api"]);
        assert_eq!(check_service(&svc, &env(&[]), &UNIX, &fs), vec![]);
        svc.cwd = PathBuf::from("/elsewhere");
        let found = check_service(&svc, &env(&[]), &UNIX, &fs);
        assert_eq!(
            found[0].message,
            "command: program \"bin/api\" does not exist at /elsewhere/bin/api"
        );
        assert_eq!(
            found[0].hint.as_deref(),
            Some("a relative program is taken from the service's cwd")
        );
        // An absolute one needs no hint.
        let found = check_service(&service(&["/opt/api"]), &env(&[]), &UNIX, &Fake::new(&[]));
        assert_eq!(
            found[0].message,
            "command: program \"/opt/api\" does not exist"
        );
        assert_eq!(found[0].hint, None);
        // An empty or relative PATH entry is relative to the cwd too.
        let fs = Fake::new(&[("/srv/app/tools/t", Probe::Executable)]);
        assert_eq!(
            resolve("t", Path::new("/srv/app"), Some("tools"), &UNIX, &fs),
            Ok(PathBuf::from("/srv/app/tools/t"))
        );
        let fs = Fake::new(&[("/srv/app/t", Probe::Executable)]);
        assert_eq!(
            resolve("t", Path::new("/srv/app"), Some("/x::/y"), &UNIX, &fs),
            Ok(PathBuf::from("/srv/app/t"))
        );
    }

    #[test]
    fn without_inherit_env_only_the_service_s_env_counts() {
        let fs = Fake::new(&[
            ("/usr/local/bin/tool", Probe::Executable),
            ("/bin/sh", Probe::Executable),
        ]);
        let mut svc = service(&["tool"]);
        let warden = env(&[("PATH", "/usr/local/bin")]);
        assert_eq!(check_service(&svc, &warden, &UNIX, &fs), vec![]);
        svc.inherit_env = false;
        let found = check_service(&svc, &warden, &UNIX, &fs);
        assert_eq!(
            found[0].hint.as_deref(),
            Some(
                "the child gets no PATH, so /bin:/usr/bin was searched; give the full path, or set PATH in env"
            )
        );
        // The C library's default path still finds what is in it.
        let sh = service(&["sh"]);
        let sh = ServiceConfig {
            inherit_env: false,
            ..sh
        };
        assert_eq!(check_service(&sh, &warden, &UNIX, &fs), vec![]);
    }

    #[test]
    fn the_shell_and_the_stop_command_are_checked() {
        let fs = Fake::new(&[("/usr/bin/tool", Probe::Executable)]);
        let mut svc = service(&["sh", "-c", "tool --serve"]);
        svc.shell = true;
        svc.stop_command = Some(vec!["tool-stop".into()]);
        let found = check_service(&svc, &env(&[("PATH", "/usr/bin")]), &UNIX, &fs);
        let messages: Vec<&str> = found.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "command: the shell \"sh\" (shell = true) is not found on PATH",
                "stop_command: program \"tool-stop\" is not found on PATH",
            ]
        );
        assert_eq!(found[1].key, "stop_command");
    }

    #[test]
    fn windows_rules_add_exe_search_the_system_dirs_and_honour_pathext() {
        let rules = Rules::windows(&env(&[("SystemRoot", "/win")]));
        let fs = Fake::new(&[
            ("/win/System32/cmd.exe", Probe::Executable),
            ("/tools/app.exe", Probe::Executable),
            ("/tools/run.cmd", Probe::Executable),
            ("/tools/notes.txt", Probe::Executable),
        ]);
        let r = |p: &str, path: Option<&str>| resolve(p, Path::new("/srv"), path, &rules, &fs);
        assert_eq!(r("cmd", None), Ok(PathBuf::from("/win/System32/cmd.exe")));
        assert_eq!(
            r("app", Some("/x;/tools")),
            Ok(PathBuf::from("/tools/app.exe"))
        );
        assert_eq!(
            r("run.cmd", Some("/tools")),
            Ok(PathBuf::from("/tools/run.cmd"))
        );
        // The spawner appends .exe only: `run` is not `run.cmd`.
        assert_eq!(r("run", Some("/tools")), Err(Problem::NotOnPath));
        assert_eq!(
            r("notes.txt", Some("/tools")),
            Err(Problem::NotExecutable(PathBuf::from("/tools/notes.txt")))
        );
        assert_eq!(
            r("/tools/none", None),
            Err(Problem::Missing(PathBuf::from("/tools/none.exe")))
        );
        let custom = Rules::windows(&env(&[("SystemRoot", "/win"), ("PATHEXT", ".EXE;.TXT")]));
        assert_eq!(
            resolve("notes.txt", Path::new("/"), Some("/tools"), &custom, &fs),
            Ok(PathBuf::from("/tools/notes.txt"))
        );
        // Windows names are case-insensitive: `Path` in env is the PATH.
        let mut svc = service(&["app"]);
        svc.env.insert("Path".into(), "/tools".into());
        assert_eq!(check_service(&svc, &env(&[]), &rules, &fs), vec![]);
    }

    #[test]
    fn the_filesystem_is_asked_once_per_path_and_load() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let prog = dir.path().join("prog");
        std::fs::write(&prog, "").expect("the program file");
        let fs = FsPrograms::default();
        let first = fs.probe(&prog);
        std::fs::remove_file(&prog).expect("removed");
        // The same load remembers what it saw; a new load looks again.
        assert_eq!(fs.probe(&prog), first);
        assert_ne!(first, Probe::Missing);
        assert_eq!(FsPrograms::default().probe(&prog), Probe::Missing);
    }
}
