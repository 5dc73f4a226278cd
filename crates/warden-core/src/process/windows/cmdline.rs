//! Building what `CreateProcessW` takes: the command line (quoted per the MSVC rules, or
//! for `cmd.exe` when the program is a batch file), the environment block, and the program
//! path resolved the way warden documents it.
//!
//! Pure functions on strings and paths, except [`resolve_program`], which looks at files.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The longest command line `CreateProcessW` accepts, in UTF-16 units with the final NUL.
const MAX_COMMAND_LINE: usize = 32_767;

const QUOTE: u16 = b'"' as u16;
const BACKSLASH: u16 = b'\\' as u16;
const SPACE: u16 = b' ' as u16;

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().collect()
}

fn ensure_no_nul(s: &OsStr, what: &str) -> io::Result<()> {
    if s.encode_wide().any(|c| c == 0) {
        return Err(invalid(format!("{what} contains a NUL character")));
    }
    Ok(())
}

/// The command line for a program that parses its arguments with the MSVC rules (what the
/// CRT, `CommandLineToArgvW` and Rust's std all do): `argv0` is always quoted; each argument
/// is quoted when it is empty or holds a space or a tab; inside, `"` becomes `\"` and the
/// backslashes right before a `"` (or before the closing quote) are doubled.
///
/// Returns the UTF-16 line with a trailing NUL.
pub(super) fn command_line(argv0: &OsStr, args: &[OsString]) -> io::Result<Vec<u16>> {
    ensure_no_nul(argv0, "the program name")?;
    let argv0 = wide(argv0);
    // argv[0] is parsed by different rules (no escapes at all): it cannot hold a quote.
    if argv0.contains(&QUOTE) {
        return Err(invalid("the program name contains a `\"`"));
    }
    let mut line = Vec::with_capacity(argv0.len() + 2);
    line.push(QUOTE);
    line.extend_from_slice(&argv0);
    line.push(QUOTE);
    for arg in args {
        ensure_no_nul(arg, "an argument")?;
        line.push(SPACE);
        let arg = wide(arg);
        let quote = arg.is_empty() || arg.iter().any(|&c| c == SPACE || c == u16::from(b'\t'));
        append_escaped(&mut line, &arg, quote, Escaping::Crt);
    }
    finish(line)
}

/// How [`append_escaped`] escapes a `"` inside an argument.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Escaping {
    /// The CRT's rules: `\"`.
    Crt,
    /// For `cmd.exe` and the script's own CRT-like `%~1`: `""`; and `%` is defused.
    Cmd,
}

/// Append `arg`, in quotes if `quote`. The backslashes right before a `"` are doubled and the
/// `"` escaped as `escaping` says; the backslashes before the closing quote are doubled so
/// that they do not escape it.
fn append_escaped(line: &mut Vec<u16>, arg: &[u16], quote: bool, escaping: Escaping) {
    if quote {
        line.push(QUOTE);
    }
    let mut backslashes = 0usize;
    for &c in arg {
        if c == BACKSLASH {
            backslashes += 1;
        } else {
            if c == QUOTE {
                // n backslashes before a quote: 2n of them, then the escape, then the quote.
                line.extend(std::iter::repeat_n(BACKSLASH, backslashes));
                line.push(match escaping {
                    Escaping::Crt => BACKSLASH,
                    Escaping::Cmd => QUOTE,
                });
            } else if escaping == Escaping::Cmd && c == u16::from(b'%') {
                line.extend("%%cd:~,".encode_utf16());
            }
            backslashes = 0;
        }
        line.push(c);
    }
    if quote {
        line.extend(std::iter::repeat_n(BACKSLASH, backslashes));
        line.push(QUOTE);
    }
}

/// The command line that runs a batch file: `cmd.exe /e:ON /v:OFF /d /c ""SCRIPT" ARGS"`.
///
/// `cmd.exe` does not parse like the CRT: `%VAR%` expands even inside quotes, and `&`, `|`,
/// `<`, `>`, `^`, `(`, `)` are operators outside quotes. So (as Rust's std does since
/// CVE-2024-24576) every argument holding anything but letters, digits and `#$*+-./:?@\_`
/// is quoted, a `"` is doubled, and `%` becomes `%%cd:~,%` (a substring of `%cd%` that is
/// empty), which stops the expansion. Line breaks cannot be passed at all and are refused.
pub(super) fn batch_command_line(script: &Path, args: &[OsString]) -> io::Result<Vec<u16>> {
    ensure_no_nul(script.as_os_str(), "the script path")?;
    let script = wide(script.as_os_str());
    if script.contains(&QUOTE) || script.last() == Some(&BACKSLASH) {
        return Err(invalid(
            "a batch file path cannot hold `\"` or end with `\\`",
        ));
    }
    let mut line: Vec<u16> = "cmd.exe /e:ON /v:OFF /d /c \"".encode_utf16().collect();
    line.push(QUOTE);
    line.extend_from_slice(&script);
    line.push(QUOTE);
    for arg in args {
        ensure_no_nul(arg, "an argument")?;
        line.push(SPACE);
        append_batch_arg(&mut line, &wide(arg))?;
    }
    line.push(QUOTE);
    finish(line)
}

fn append_batch_arg(line: &mut Vec<u16>, arg: &[u16]) -> io::Result<()> {
    const UNQUOTED: &str = r"#$*+-./:?@\_";
    let text = String::from_utf16_lossy(arg);
    if text.contains(['\r', '\n']) {
        return Err(invalid(
            "an argument to a batch file cannot hold a line break",
        ));
    }
    let quote = arg.is_empty()
        || arg.last() == Some(&BACKSLASH)
        || text.chars().any(|c| {
            (c.is_ascii() && !(c.is_ascii_alphanumeric() || UNQUOTED.contains(c))) || c.is_control()
        });
    append_escaped(line, arg, quote, Escaping::Cmd);
    Ok(())
}

fn finish(mut line: Vec<u16>) -> io::Result<Vec<u16>> {
    line.push(0);
    if line.len() > MAX_COMMAND_LINE {
        return Err(invalid(format!(
            "the command line is {} characters long; Windows allows {}",
            line.len() - 1,
            MAX_COMMAND_LINE - 1
        )));
    }
    Ok(line)
}

/// Environment variable names compare without regard to case on Windows.
fn env_key(name: &OsStr) -> String {
    name.to_string_lossy().to_uppercase()
}

/// The child's environment: `base` (warden's own unless the spec clears it) with `overrides`
/// set over it, names compared without regard to case (the override's spelling wins).
pub(super) fn merge_env(
    base: impl IntoIterator<Item = (OsString, OsString)>,
    overrides: &[(OsString, OsString)],
) -> Vec<(OsString, OsString)> {
    let mut merged: std::collections::BTreeMap<String, (OsString, OsString)> = base
        .into_iter()
        .map(|(k, v)| (env_key(&k), (k, v)))
        .collect();
    for (k, v) in overrides {
        merged.insert(env_key(k), (k.clone(), v.clone()));
    }
    // Sorted by the upper-cased name, as Windows expects of an environment block.
    merged.into_values().collect()
}

/// Look up `name` (case-insensitively) in an environment.
pub(super) fn env_get<'a>(env: &'a [(OsString, OsString)], name: &str) -> Option<&'a OsStr> {
    let want = name.to_uppercase();
    env.iter()
        .find(|(k, _)| env_key(k) == want)
        .map(|(_, v)| v.as_os_str())
}

/// The `CREATE_UNICODE_ENVIRONMENT` block: `NAME=VALUE\0` for each, then one more `\0`.
pub(super) fn env_block(env: &[(OsString, OsString)]) -> io::Result<Vec<u16>> {
    let mut block = Vec::new();
    for (k, v) in env {
        ensure_no_nul(k, "an environment variable name")?;
        ensure_no_nul(v, "an environment variable value")?;
        let key = wide(k);
        // A name may start with `=` (the hidden per-drive `=C:` variables) but hold no other.
        if key.is_empty() || key.iter().skip(1).any(|&c| c == u16::from(b'=')) {
            return Err(invalid(format!(
                "invalid environment variable name {:?}",
                k.to_string_lossy()
            )));
        }
        block.extend_from_slice(&key);
        block.push(u16::from(b'='));
        block.extend(v.encode_wide());
        block.push(0);
    }
    if block.is_empty() {
        block.push(0);
    }
    block.push(0);
    Ok(block)
}

/// NUL-terminated UTF-16 for a Win32 call.
pub(super) fn to_wide_nul(s: &OsStr) -> io::Result<Vec<u16>> {
    ensure_no_nul(s, "a path")?;
    Ok(s.encode_wide().chain(std::iter::once(0)).collect())
}

/// What to start: the executable and whether it is a batch file to hand to `cmd.exe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Resolved {
    pub path: PathBuf,
    pub batch: bool,
}

/// Find the file to run, the way warden documents it (not quite `CreateProcessW`'s own
/// search, which looks in warden's directory and cwd first and uses warden's `PATH`):
///
/// - a program with a directory part (`bin\app.exe`, `C:\x\app`, `./app`) is taken as is,
///   relative to the service's `cwd`;
/// - a bare name is searched in the child's `PATH`, then in the system directories
///   (`system_dirs`, e.g. `C:\Windows\System32` and `C:\Windows`);
/// - a name without an extension gets `.exe` (as `CreateProcessW` does); `.bat` and `.cmd`
///   files are batch files, run through `cmd.exe`.
pub(super) fn resolve_program(
    program: &OsStr,
    cwd: &Path,
    path_var: Option<&OsStr>,
    system_dirs: &[PathBuf],
) -> Option<Resolved> {
    let given = Path::new(program);
    let has_dir = program
        .encode_wide()
        .any(|c| c == BACKSLASH || c == u16::from(b'/'))
        || given.is_absolute()
        || given.has_root()
        || given.components().count() > 1;
    let candidates: Vec<PathBuf> = if has_dir {
        vec![cwd.join(given)]
    } else {
        path_var
            .into_iter()
            .flat_map(std::env::split_paths)
            .filter(|d| !d.as_os_str().is_empty())
            .chain(system_dirs.iter().cloned())
            .map(|d| d.join(given))
            .collect()
    };
    candidates.into_iter().find_map(|base| {
        let file = if base.extension().is_some() {
            base
        } else {
            let mut with_exe = base.into_os_string();
            with_exe.push(".exe");
            PathBuf::from(with_exe)
        };
        file.is_file().then(|| Resolved {
            batch: is_batch(&file),
            path: file,
        })
    })
}

fn is_batch(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("bat") || e.eq_ignore_ascii_case("cmd"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::windows::ffi::OsStringExt;

    use super::*;

    /// A NUL-terminated wide string back to text.
    fn from_wide(w: &[u16]) -> String {
        let end = w.iter().position(|&c| c == 0).unwrap_or(w.len());
        OsString::from_wide(&w[..end])
            .to_string_lossy()
            .into_owned()
    }

    fn line(args: &[&str]) -> String {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        from_wide(&command_line(OsStr::new(r"C:\bin\prog.exe"), &args).unwrap())
    }

    #[test]
    fn msvc_quoting_follows_the_documented_examples() {
        // The table of "Parsing C++ command-line arguments", read backwards.
        assert_eq!(line(&[]), r#""C:\bin\prog.exe""#);
        assert_eq!(
            line(&["a b c", "d", "e"]),
            r#""C:\bin\prog.exe" "a b c" d e"#
        );
        assert_eq!(
            line(&[r#"ab"c"#, "\\", "d"]),
            r#""C:\bin\prog.exe" ab\"c \ d"#
        );
        assert_eq!(
            line(&[r"a\\\b", "de fg", "h"]),
            r#""C:\bin\prog.exe" a\\\b "de fg" h"#
        );
        assert_eq!(
            line(&[r#"a\"b"#, "c", "d"]),
            r#""C:\bin\prog.exe" a\\\"b c d"#
        );
        assert_eq!(
            line(&[r"a\\b c", "d", "e"]),
            r#""C:\bin\prog.exe" "a\\b c" d e"#
        );
        assert_eq!(line(&[r"a b\"]), r#""C:\bin\prog.exe" "a b\\""#);
        assert_eq!(line(&[""]), r#""C:\bin\prog.exe" """#);
        assert_eq!(line(&["tab\there"]), "\"C:\\bin\\prog.exe\" \"tab\there\"");
    }

    #[test]
    fn program_name_with_a_quote_is_refused() {
        let err = command_line(OsStr::new("a\"b.exe"), &[]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn nul_in_an_argument_is_refused() {
        let err = command_line(OsStr::new("a.exe"), &[OsString::from("x\0y")]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn overlong_command_line_is_refused() {
        let err =
            command_line(OsStr::new("a.exe"), &[OsString::from("x".repeat(40_000))]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    fn bat(args: &[&str]) -> io::Result<String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        batch_command_line(Path::new(r"C:\s\run.bat"), &args).map(|w| from_wide(&w))
    }

    #[test]
    fn batch_arguments_are_quoted_for_cmd() {
        assert_eq!(
            bat(&[]).unwrap(),
            r#"cmd.exe /e:ON /v:OFF /d /c ""C:\s\run.bat"""#
        );
        assert_eq!(
            bat(&["plain", "a b", "x&y", ""]).unwrap(),
            r#"cmd.exe /e:ON /v:OFF /d /c ""C:\s\run.bat" plain "a b" "x&y" """"#
        );
        assert_eq!(
            bat(&[r#"say "hi""#]).unwrap(),
            r#"cmd.exe /e:ON /v:OFF /d /c ""C:\s\run.bat" "say ""hi"""""#
        );
    }

    #[test]
    fn batch_percent_cannot_expand_a_variable() {
        assert_eq!(
            bat(&["%PATH%"]).unwrap(),
            r#"cmd.exe /e:ON /v:OFF /d /c ""C:\s\run.bat" "%%cd:~,%PATH%%cd:~,%"""#
        );
    }

    #[test]
    fn batch_line_break_is_refused() {
        assert_eq!(
            bat(&["a\nb"]).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn env_merge_is_case_insensitive_and_sorted() {
        let base = vec![
            (OsString::from("Path"), OsString::from("old")),
            (OsString::from("B"), OsString::from("1")),
        ];
        let merged = merge_env(base, &[(OsString::from("PATH"), OsString::from("new"))]);
        assert_eq!(
            merged,
            vec![
                (OsString::from("B"), OsString::from("1")),
                (OsString::from("PATH"), OsString::from("new")),
            ]
        );
        assert_eq!(env_get(&merged, "path"), Some(OsStr::new("new")));
    }

    #[test]
    fn env_block_layout() {
        let env = vec![(OsString::from("A"), OsString::from("1"))];
        assert_eq!(
            env_block(&env).unwrap(),
            "A=1\0\0".encode_utf16().collect::<Vec<_>>()
        );
        assert_eq!(env_block(&[]).unwrap(), vec![0, 0]);
        let bad = vec![(OsString::from("A=B"), OsString::from("1"))];
        assert_eq!(
            env_block(&bad).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
