//! test-child: a flag-driven program for warden's tests.
//!
//! Flags run in the order given; when they are all done the program exits 0, unless an
//! `--exit-after` timer is pending (then it waits for it).
//!
//! | flag | effect |
//! |---|---|
//! | `--print-pid` | write `PID\n` to stdout |
//! | `--ready-file PATH` | write `PID\n` to PATH (atomically: temp file + rename) |
//! | `--touch PATH` | append `PID MILLIS_SINCE_EPOCH\n` to PATH (count starts/restarts) |
//! | `--sleep DUR` | sleep `DUR` (`500ms`, `2s`, `1.5s`, `1m`, `3` = seconds) or `forever` |
//! | `--exit N` | exit with code N now |
//! | `--exit-after DUR N` | exit with code N after DUR, while the next flags go on |
//! | `--ignore-term` | ignore SIGTERM and SIGINT (Unix; also passed on to descendants) |
//! | `--on-term-exit N` | exit N on SIGTERM (Unix) |
//! | `--on-term-write PATH` | on SIGTERM write `term` to PATH, then exit 0 (Unix) |
//! | `--setsid` | become a session leader (Unix) |
//! | `--spawn-grandchild PIDFILE` | start a copy of itself that sleeps forever in the same group; it writes its pid to PIDFILE; returns once PIDFILE exists |
//! | `--double-fork PIDFILE` | start an intermediate copy that starts a `setsid` daemon sleeping forever (its pid in PIDFILE) and exits; returns once the intermediate is reaped and PIDFILE exists |
//! | `--daemon-clear-env` | the daemon of a later `--double-fork` starts with an empty environment (as nginx's master clears its own) |
//! | `--daemon-arg ARG` | the daemon of a later `--double-fork` also runs flag ARG (repeat for each word: `--daemon-arg --on-term-write --daemon-arg PATH`) |
//! | `--stderr` / `--stdout` | where the next output flags write (stdout by default) |
//! | `--line-len L` | length of the next `--lines`/`--flood` lines, newline included (default 100) |
//! | `--lines N` | write N numbered lines `line 000000001 xxxx…`, one write per line |
//! | `--flood N` | same lines, as fast as possible, through a 1 MiB buffer |
//! | `--flood-for DUR` | the chaos suite's flood: the same lines, as fast as possible, for DUR, then `flood-done N` (N the last line's number); every write ends at a line's end |
//! | `--alternate N` | write `out-1` to stdout, `err-1` to stderr, `out-2`, … up to `err-N`, one write (flushed) per line |
//! | `--no-newline TEXT` | write TEXT without a newline |
//! | `--invalid-utf8` | write the bytes `ff fe` and a newline |
//! | `--env NAME` | write `NAME=value`, or `NAME unset` |
//! | `--cwd` | write the current directory |
//! | `--list-fds` | write `fds: 0 1 2…`, the file descriptors open in this process (Unix; it opens none to look) |
//!
//! Descendants started by `--spawn-grandchild` and `--double-fork` have their stdio on the null
//! device, so they never keep a parent's pipe open.
//!
//! Exit codes: 0 when all flags are done; N from `--exit`, `--exit-after`, `--on-term-exit`;
//! 2 for a usage error ([`EXIT_USAGE`]); 3 for an I/O error ([`EXIT_IO`]; a broken pipe exits
//! 3 quietly).

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The exit code of a usage error.
const EXIT_USAGE: u8 = 2;
/// The exit code of an I/O error.
const EXIT_IO: u8 = 3;
/// The length of a `--lines`/`--flood` line until `--line-len`, newline included.
const DEFAULT_LINE_LEN: usize = 100;
/// The buffer `--flood` writes through.
const FLOOD_BUFFER: usize = 1 << 20;
/// How long a handshake with a descendant (its pid file) may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// How often that pid file is looked for.
const HANDSHAKE_POLL: Duration = Duration::from_millis(2);

/// Where output flags write.
#[derive(Clone, Copy)]
enum Target {
    Stdout,
    Stderr,
}

#[derive(Debug)]
enum Failure {
    Usage(String),
    Io(String, io::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::Io("write".to_owned(), e)
    }
}

struct State {
    target: Target,
    line_len: usize,
    ignore_term: bool,
    exit_pending: bool,
    daemon_clear_env: bool,
    daemon_args: Vec<OsString>,
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match run(&args) {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(code)) => exit_now(code),
        Err(Failure::Usage(msg)) => {
            eprintln!("test-child: {msg}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Io(what, e)) => {
            if e.kind() != io::ErrorKind::BrokenPipe {
                eprintln!("test-child: {what}: {e}");
            }
            ExitCode::from(EXIT_IO)
        }
    }
}

/// Exit with any `i32` code (`ExitCode` only takes a `u8` portably).
fn exit_now(code: i32) -> ExitCode {
    // Flags that wrote output flushed it already.
    std::process::exit(code)
}

/// Run the flags; `Some(code)` to exit with that code.
fn run(args: &[OsString]) -> Result<Option<i32>, Failure> {
    let mut st = State {
        target: Target::Stdout,
        line_len: DEFAULT_LINE_LEN,
        ignore_term: false,
        exit_pending: false,
        daemon_clear_env: false,
        daemon_args: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let flag = flag
            .to_str()
            .ok_or_else(|| Failure::Usage(format!("bad flag {}", flag.to_string_lossy())))?;
        let mut value = |what: &str| -> Result<&OsString, Failure> {
            it.next()
                .ok_or_else(|| Failure::Usage(format!("{flag} needs {what}")))
        };
        match flag {
            "--print-pid" => write_to(
                Target::Stdout,
                format!("{}\n", std::process::id()).as_bytes(),
            )?,
            "--ready-file" => {
                let path = PathBuf::from(value("a path")?);
                write_atomic(&path, format!("{}\n", std::process::id()).as_bytes())
                    .map_err(|e| Failure::Io(format!("ready file {}", path.display()), e))?;
            }
            "--touch" => {
                let path = PathBuf::from(value("a path")?);
                touch(&path).map_err(|e| Failure::Io(format!("touch {}", path.display()), e))?;
            }
            "--sleep" => match parse_duration(value("a duration")?)? {
                Some(d) => std::thread::sleep(d),
                None => sleep_forever(),
            },
            "--exit" => return Ok(Some(parse_num(value("a code")?)?)),
            "--exit-after" => {
                let dur = parse_duration(value("a duration")?)?
                    .ok_or_else(|| Failure::Usage("--exit-after needs a finite duration".into()))?;
                let code: i32 = parse_num(value("a code")?)?;
                st.exit_pending = true;
                std::thread::spawn(move || {
                    std::thread::sleep(dur);
                    std::process::exit(code);
                });
            }
            "--ignore-term" => {
                st.ignore_term = true;
                sig::ignore_term();
            }
            "--on-term-exit" => sig::on_term_exit(parse_num(value("a code")?)?),
            "--on-term-write" => sig::on_term_write(Path::new(value("a path")?))?,
            "--setsid" => sig::setsid(),
            "--spawn-grandchild" => {
                let pidfile = PathBuf::from(value("a pid file")?);
                spawn_grandchild(&st, &pidfile)?;
            }
            "--double-fork" => {
                let pidfile = PathBuf::from(value("a pid file")?);
                double_fork(&st, &pidfile)?;
            }
            "--double-fork-middle" => {
                // Internal: the intermediate of --double-fork. Starts the daemon and returns.
                let pidfile = PathBuf::from(value("a pid file")?);
                let mut extra = vec![OsString::from("--setsid")];
                extra.extend(descendant_flags(&st));
                extra.extend(st.daemon_args.iter().cloned());
                let mut daemon = self_command(&extra, &pidfile)?;
                if st.daemon_clear_env {
                    daemon.env_clear();
                }
                daemon
                    .spawn()
                    .map_err(|e| Failure::Io("spawn daemon".into(), e))?;
                wait_for_file(&pidfile)?;
                return Ok(Some(0));
            }
            "--daemon-clear-env" => st.daemon_clear_env = true,
            "--daemon-arg" => st.daemon_args.push(value("a flag")?.clone()),
            "--stderr" => st.target = Target::Stderr,
            "--stdout" => st.target = Target::Stdout,
            "--line-len" => st.line_len = parse_num(value("a length")?)?,
            "--lines" => {
                let n: u64 = parse_num(value("a count")?)?;
                for i in 1..=n {
                    write_to(st.target, &numbered_line(i, st.line_len))?;
                }
            }
            "--flood" => {
                let n: u64 = parse_num(value("a count")?)?;
                flood(st.target, n, st.line_len)?;
            }
            "--flood-for" => {
                let dur = parse_duration(value("a duration")?)?
                    .ok_or_else(|| Failure::Usage("--flood-for needs a finite duration".into()))?;
                flood_for(st.target, dur, st.line_len)?;
            }
            "--alternate" => {
                let n: u64 = parse_num(value("a count")?)?;
                for i in 1..=n {
                    write_to(Target::Stdout, format!("out-{i}\n").as_bytes())?;
                    write_to(Target::Stderr, format!("err-{i}\n").as_bytes())?;
                }
            }
            "--no-newline" => write_to(st.target, value("a text")?.as_encoded_bytes())?,
            "--invalid-utf8" => write_to(st.target, b"\xff\xfe\n")?,
            "--env" => {
                let name = value("a name")?;
                let line = match std::env::var_os(name) {
                    Some(v) => format!("{}={}\n", name.to_string_lossy(), v.to_string_lossy()),
                    None => format!("{} unset\n", name.to_string_lossy()),
                };
                write_to(st.target, line.as_bytes())?;
            }
            "--cwd" => {
                let cwd =
                    std::env::current_dir().map_err(|e| Failure::Io("current dir".into(), e))?;
                write_to(st.target, format!("{}\n", cwd.display()).as_bytes())?;
            }
            "--list-fds" => {
                let fds = sig::open_fds()?;
                let mut line = String::from("fds:");
                for fd in fds {
                    line.push_str(&format!(" {fd}"));
                }
                line.push('\n');
                write_to(st.target, line.as_bytes())?;
            }
            other => return Err(Failure::Usage(format!("unknown flag {other}"))),
        }
    }
    if st.exit_pending {
        sleep_forever();
    }
    Ok(None)
}

fn parse_num<T: std::str::FromStr>(s: &OsString) -> Result<T, Failure> {
    s.to_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Failure::Usage(format!("bad number {}", s.to_string_lossy())))
}

/// `None` for `forever`.
fn parse_duration(s: &OsString) -> Result<Option<Duration>, Failure> {
    let bad = || {
        Failure::Usage(format!(
            "bad duration {} (use 500ms, 2s, 1m, forever)",
            s.to_string_lossy()
        ))
    };
    let s = s.to_str().ok_or_else(bad)?;
    if s == "forever" {
        return Ok(None);
    }
    let (num, unit) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(n * unit)
        .map(Some)
        .map_err(|_| bad())
}

fn sleep_forever() -> ! {
    loop {
        std::thread::park();
    }
}

fn write_to(target: Target, bytes: &[u8]) -> io::Result<()> {
    match target {
        Target::Stdout => {
            let mut out = io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()
        }
        Target::Stderr => io::stderr().lock().write_all(bytes),
    }
}

/// `line 000000001 xxxx…\n`, exactly `len` bytes if `len` leaves room for the number.
fn numbered_line(i: u64, len: usize) -> Vec<u8> {
    let mut line = format!("line {i:09} ").into_bytes();
    if line.len() + 1 < len {
        line.resize(len - 1, b'x');
    }
    line.push(b'\n');
    line
}

fn flood(target: Target, n: u64, len: usize) -> io::Result<()> {
    let sink: Box<dyn Write> = match target {
        Target::Stdout => Box::new(io::stdout().lock()),
        Target::Stderr => Box::new(io::stderr().lock()),
    };
    let mut w = io::BufWriter::with_capacity(FLOOD_BUFFER, sink);
    for i in 1..=n {
        w.write_all(&numbered_line(i, len))?;
    }
    w.flush()
}

/// `--flood-for`: numbered lines through the flood buffer until `dur` passed (the clock is
/// read every 1024 lines), then `flood-done N`. The buffer is flushed only at a line's end.
fn flood_for(target: Target, dur: Duration, len: usize) -> io::Result<()> {
    let sink: Box<dyn Write> = match target {
        Target::Stdout => Box::new(io::stdout().lock()),
        Target::Stderr => Box::new(io::stderr().lock()),
    };
    let line = numbered_line(1, len);
    let per_flush = (FLOOD_BUFFER / line.len()).max(1);
    let mut buf = Vec::with_capacity(per_flush * line.len());
    let mut w = sink;
    let deadline = Instant::now() + dur;
    let mut i = 0u64;
    while Instant::now() < deadline {
        for _ in 0..1024 {
            i += 1;
            buf.extend_from_slice(&numbered_line(i, len));
            if buf.len() + line.len() > buf.capacity() {
                w.write_all(&buf)?;
                buf.clear();
            }
        }
    }
    buf.extend_from_slice(format!("flood-done {i}\n").as_bytes());
    w.write_all(&buf)?;
    w.flush()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn touch(path: &Path) -> io::Result<()> {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    // One write call with O_APPEND: lines from concurrent starts never interleave.
    f.write_all(format!("{} {ms}\n", std::process::id()).as_bytes())
}

/// Flags a descendant inherits so that it behaves like its parent toward signals.
fn descendant_flags(st: &State) -> Vec<OsString> {
    if st.ignore_term {
        vec!["--ignore-term".into()]
    } else {
        Vec::new()
    }
}

/// A copy of this program, its stdio on the null device.
fn self_copy() -> Result<Command, Failure> {
    let exe = std::env::current_exe().map_err(|e| Failure::Io("current exe".into(), e))?;
    let mut cmd = Command::new(exe);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Ok(cmd)
}

/// A copy of this program running `extra`, then writing `pidfile` and sleeping forever.
fn self_command(extra: &[OsString], pidfile: &Path) -> Result<Command, Failure> {
    let mut cmd = self_copy()?;
    cmd.args(extra)
        .arg("--ready-file")
        .arg(pidfile)
        .args(["--sleep", "forever"]);
    Ok(cmd)
}

fn spawn_grandchild(st: &State, pidfile: &Path) -> Result<(), Failure> {
    let mut cmd = self_command(&descendant_flags(st), pidfile)?;
    // Not waited for: it sleeps forever; killing it is the test's business.
    cmd.spawn()
        .map_err(|e| Failure::Io("spawn grandchild".into(), e))?;
    wait_for_file(pidfile)
}

fn double_fork(st: &State, pidfile: &Path) -> Result<(), Failure> {
    let mut middle = self_copy()?;
    middle.args(descendant_flags(st));
    if st.daemon_clear_env {
        middle.arg("--daemon-clear-env");
    }
    for arg in &st.daemon_args {
        middle.arg("--daemon-arg").arg(arg);
    }
    let status = middle
        .arg("--double-fork-middle")
        .arg(pidfile)
        .status()
        .map_err(|e| Failure::Io("spawn intermediate".into(), e))?;
    if !status.success() {
        return Err(Failure::Io(
            "intermediate".into(),
            io::Error::other(format!("ended with {status}")),
        ));
    }
    wait_for_file(pidfile)
}

/// Poll for a file a descendant writes (a handshake, bounded to 20 s).
fn wait_for_file(path: &Path) -> Result<(), Failure> {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    while !path.exists() {
        if Instant::now() > deadline {
            return Err(Failure::Io(
                format!("waiting for {}", path.display()),
                io::ErrorKind::TimedOut.into(),
            ));
        }
        std::thread::sleep(HANDSHAKE_POLL);
    }
    Ok(())
}

#[cfg(unix)]
mod sig {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicI32, Ordering};

    use super::Failure;

    /// What `--on-term-write` writes.
    const TERM_NOTE: &[u8] = b"term";
    /// The mode of the file `--on-term-write` creates.
    const TERM_NOTE_MODE: libc::c_uint = 0o644;

    static TERM_EXIT: AtomicI32 = AtomicI32::new(0);
    static TERM_PATH: OnceLock<CString> = OnceLock::new();

    fn install(sig: libc::c_int, handler: libc::sighandler_t) {
        // SAFETY: installing a disposition; handlers below are async-signal-safe.
        unsafe {
            libc::signal(sig, handler);
        }
    }

    pub fn ignore_term() {
        install(libc::SIGTERM, libc::SIG_IGN);
        install(libc::SIGINT, libc::SIG_IGN);
    }

    extern "C" fn exit_handler(_sig: libc::c_int) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(TERM_EXIT.load(Ordering::Relaxed)) }
    }

    pub fn on_term_exit(code: i32) {
        TERM_EXIT.store(code, Ordering::Relaxed);
        install(
            libc::SIGTERM,
            exit_handler as *const () as libc::sighandler_t,
        );
    }

    extern "C" fn write_handler(_sig: libc::c_int) {
        // SAFETY: open, write, close and _exit are async-signal-safe; the path was set before
        // the handler was installed, so the OnceLock read is a plain load.
        unsafe {
            if let Some(path) = TERM_PATH.get() {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                    TERM_NOTE_MODE,
                );
                if fd >= 0 {
                    libc::write(fd, TERM_NOTE.as_ptr().cast(), TERM_NOTE.len());
                    libc::close(fd);
                }
            }
            libc::_exit(0)
        }
    }

    pub fn on_term_write(path: &Path) -> Result<(), Failure> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Failure::Usage("path with NUL".into()))?;
        if TERM_PATH.set(c).is_err() {
            return Err(Failure::Usage("--on-term-write given twice".into()));
        }
        install(
            libc::SIGTERM,
            write_handler as *const () as libc::sighandler_t,
        );
        Ok(())
    }

    pub fn setsid() {
        // SAFETY: plain syscall; failure (already a group leader) leaves us where we are.
        unsafe {
            libc::setsid();
        }
    }

    /// The highest descriptor number `--list-fds` looks at, whatever the limit says.
    const MAX_FDS_LISTED: libc::rlim_t = 1 << 16;

    /// The file descriptors open in this process, probed with `fcntl(F_GETFD)` up to the
    /// soft `RLIMIT_NOFILE` (so that looking opens none, as reading `/proc/self/fd` would).
    #[allow(clippy::unnecessary_wraps, reason = "same signature as on Windows")]
    pub fn open_fds() -> Result<Vec<i32>, Failure> {
        // SAFETY: an all-zero rlimit is valid; getrlimit fills it in.
        let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
        // SAFETY: a valid out-pointer.
        let limit = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) } == 0 {
            lim.rlim_cur.min(MAX_FDS_LISTED)
        } else {
            MAX_FDS_LISTED
        };
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        // SAFETY: F_GETFD only reads the descriptor's flags; a closed one gives EBADF.
        Ok((0..limit)
            .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1)
            .collect())
    }
}

/// Signals do not exist on Windows: these flags are accepted and do nothing.
#[cfg(not(unix))]
mod sig {
    use std::path::Path;

    use super::Failure;

    pub fn ignore_term() {}
    pub fn on_term_exit(_code: i32) {}
    #[allow(clippy::unnecessary_wraps, reason = "same signature as on Unix")]
    pub fn on_term_write(_path: &Path) -> Result<(), Failure> {
        Ok(())
    }
    pub fn setsid() {}

    pub fn open_fds() -> Result<Vec<i32>, Failure> {
        Err(Failure::Usage("--list-fds is for Unix".into()))
    }
}
