//! The bounds of every number and string a config may hold.
//!
//! A config that `warden check` accepts must never crash or hang the daemon, so every value a
//! user writes is bounded here, at load time, with a positioned error; the code that uses the
//! values (backoff, timers, rotation) can then never overflow or loop for long. The README's
//! "Security" section lists these limits with their reasons.

use std::time::Duration;

const HOUR: u64 = 3_600;
const DAY: u64 = 24 * HOUR;

/// The config file itself: a hand-written config of hundreds of services is about 100 KB;
/// the cap bounds the memory and the time of a parse (and a `/dev/zero` config).
pub(crate) const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// An `env_file`: the whole environment of a process must fit in `ARG_MAX` (2 MiB on Linux,
/// 1 MiB on macOS), so a bigger env file could never start a service anyway.
pub(crate) const MAX_ENV_FILE_BYTES: u64 = 1 << 20;

/// An `api_token_file`: a token is one line; 64 KiB leaves room for any real one.
pub(crate) const MAX_TOKEN_FILE_BYTES: u64 = 64 << 10;

/// `stop_timeout`, `shutdown_timeout`, `backoff.initial` and `backoff.max`: a graceful stop
/// (or a restart delay) longer than a day cannot be told from a hang (write `restart =
/// "never"` to never restart); Windows also adds `shutdown_timeout` to its own 32-bit
/// millisecond preshutdown timeout.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(DAY);

/// `backoff.reset_after` and `start_limit.window`: windows over which runs are counted; a
/// year is longer than any window meant, and keeps `Instant` arithmetic far from overflow.
pub(crate) const MAX_WINDOW: Duration = Duration::from_secs(365 * DAY);

/// `backoff.factor`: from the smallest delay (1 ms) to the largest (a day) in 5 steps; a
/// bigger factor is no different from jumping to `max`.
pub(crate) const MAX_BACKOFF_FACTOR: f64 = 100.0;

/// `start_limit.count`: warden remembers up to `count + 1` start times per service.
pub(crate) const MAX_START_LIMIT_COUNT: i64 = 1_000;

/// `log.keep`: each rotation renames up to `keep` files while the stream waits.
pub(crate) const MAX_KEEP: i64 = 1_000;

/// `log.max_size`, at least: a rotation costs up to `keep` renames, so a file rotates after
/// at least this many bytes (a smaller value would rotate on every line).
pub(crate) const MIN_LOG_SIZE: u64 = 1 << 10;

/// `log.max_size`, at most: a single log file bigger than a TiB is never what was meant.
pub(crate) const MAX_LOG_SIZE: u64 = 1 << 40;

/// A service name becomes part of file names (`NAME.err.log.1000.gz`, `svc-NAME.json`,
/// limited to 255 bytes), of Windows service names (256) and of the Event Log source; 64
/// leaves room for every suffix.
pub(crate) const MAX_NAME_LEN: usize = 64;

/// How deep `${A:-${B:-...}}` may nest: a default of a default is useful, 32 levels are more
/// than any real config uses, and the expander recurses once per level.
pub(crate) const MAX_EXPAND_DEPTH: usize = 32;

/// One string value once expanded: `"${BIG}${BIG}..."` must not turn a 1 MiB config into
/// gigabytes; no argument or environment value can be longer than `ARG_MAX` anyway.
pub(crate) const MAX_EXPANDED_BYTES: usize = 1 << 20;

/// How deep arrays and tables may nest in the file (counted before parsing): no key of a
/// config is deeper than 4 levels; the bound keeps the parser's and the drop's recursion
/// small (`toml_edit` itself stops at 80).
pub(crate) const MAX_TOML_DEPTH: usize = 32;

/// The longest path of a Unix socket: `sun_path` holds 108 bytes on Linux and 104 on macOS
/// and the BSDs, including the terminating NUL.
#[cfg(unix)]
pub(crate) const MAX_SOCKET_PATH: usize = if cfg!(target_os = "linux") { 107 } else { 103 };

/// The `PATH` entries searched for a program's warning: a real `PATH` has a few dozen, and a
/// hostile one (1 MiB of `:`) must not turn a load into a million `stat` calls per service.
/// A program not found within them is not warned about: warden cannot tell.
pub(crate) const MAX_PATH_SEARCH: usize = 1_024;

/// `limits.nofile`: Linux's `fs.nr_open` defaults to 2^20 and can be raised to about 2^30;
/// more cannot be granted anywhere.
pub(crate) const MAX_NOFILE: u64 = 1 << 30;

/// `limits.nproc`: Linux's `pid_max` is at most 2^22.
pub(crate) const MAX_NPROC: u64 = 1 << 22;

/// Any other `limits` value (bytes, seconds, counts): far below `RLIM_INFINITY` (2^64 - 1),
/// so that a number is never mistaken for "unlimited" (write `"unlimited"` for that).
pub(crate) const MAX_LIMIT_VALUE: u64 = 1 << 62;

/// `memory_limit`, at least: below a MiB no program even starts, and the kernel would kill
/// it at once.
pub(crate) const MIN_MEMORY_LIMIT: u64 = 1 << 20;

/// `memory_limit`, at most: a PiB is more than any machine has.
pub(crate) const MAX_MEMORY_LIMIT: u64 = 1 << 50;

/// `cpu_max`, at most, in percent of one CPU: 1,000 CPUs (the quota per 100 ms period stays
/// far below the kernel's bound).
pub(crate) const MAX_CPU_PERCENT: u32 = 100_000;
