//! `sd_notify`: what warden tells the systemd that runs it (`Type=notify`). A datagram to
//! `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace on Linux):
//!
//! - `READY=1` once every autostart service had its first start;
//! - `STOPPING=1` when stopping begins;
//! - `WATCHDOG=1` every half of `$WATCHDOG_USEC`, when systemd set it for this process
//!   (`$WATCHDOG_PID`, if set, is warden's pid).
//!
//! [`Host::take_from_env`] also removes these variables, so that the services warden
//! starts do not talk to warden's systemd themselves.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
pub const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
pub const WATCHDOG_PID: &str = "WATCHDOG_PID";

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// A failed send is reported once.
    warned: AtomicBool,
}

/// The address in `$NOTIFY_SOCKET`.
fn address(value: &str) -> io::Result<SocketAddr> {
    if let Some(name) = value.strip_prefix('@') {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            #[cfg(target_os = "android")]
            use std::os::android::net::SocketAddrExt;
            #[cfg(target_os = "linux")]
            use std::os::linux::net::SocketAddrExt;
            return SocketAddr::from_abstract_name(name.as_bytes());
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = name;
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "abstract socket addresses exist on Linux only",
            ));
        }
    }
    if value.starts_with('/') {
        return SocketAddr::from_pathname(value);
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "neither an absolute path nor @name",
    ))
}

impl Notifier {
    /// A notifier for the address `value` (of `$NOTIFY_SOCKET`).
    pub fn new(value: &str) -> io::Result<Notifier> {
        let addr = address(value)?;
        let socket = UnixDatagram::unbound()?;
        // Never block warden's runtime on a full queue.
        socket.set_nonblocking(true)?;
        Ok(Notifier {
            socket,
            addr,
            warned: AtomicBool::new(false),
        })
    }

    /// Send one message (`KEY=VALUE` lines).
    pub fn send(&self, message: &str) -> io::Result<()> {
        self.socket
            .send_to_addr(message.as_bytes(), &self.addr)
            .map(drop)
    }

    /// Send, and say on stderr (once) when it did not work.
    pub fn tell(&self, message: &str) {
        if let Err(e) = self.send(message)
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            crate::commands::warn(&format!(
                "warden: warning: cannot notify systemd ({}): {e}",
                message.lines().next().unwrap_or_default()
            ));
        }
    }
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, if it is meant for `me`.
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(me)
    {
        return None;
    }
    Some(Duration::from_micros(usec / 2))
}

/// What the systemd running warden asked for, read from the environment.
#[derive(Debug, Default, Clone)]
pub struct Host {
    pub notifier: Option<Arc<Notifier>>,
    pub watchdog: Option<Duration>,
}

impl Host {
    /// Read `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`, and remove them from the
    /// environment the services inherit.
    ///
    /// # Safety
    /// No other thread may run (it changes the process environment): call it first thing.
    pub unsafe fn take_from_env() -> Host {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let socket = var(NOTIFY_SOCKET);
        let watchdog = watchdog_interval(
            var(WATCHDOG_USEC).as_deref(),
            var(WATCHDOG_PID).as_deref(),
            std::process::id(),
        );
        for k in [NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID] {
            // SAFETY: the caller guarantees that no other thread runs.
            unsafe { std::env::remove_var(k) };
        }
        let Some(socket) = socket else {
            return Host::default();
        };
        match Notifier::new(&socket) {
            Ok(n) => Host {
                notifier: Some(Arc::new(n)),
                watchdog,
            },
            Err(e) => {
                crate::commands::warn(&format!(
                    "warden: warning: {NOTIFY_SOCKET}={socket}: {e}; systemd will not hear from warden"
                ));
                Host::default()
            }
        }
    }

    /// `READY=1` and a status line.
    pub fn ready(&self, services: usize) {
        if let Some(n) = &self.notifier {
            n.tell(&format!(
                "READY=1\nSTATUS=supervising {services} service(s)"
            ));
        }
    }

    /// `STOPPING=1`.
    pub fn stopping(&self) {
        if let Some(n) = &self.notifier {
            n.tell("STOPPING=1\nSTATUS=stopping every service");
        }
    }

    /// Ping the watchdog every `interval` until the runtime ends.
    pub fn spawn_watchdog(&self) {
        if let (Some(n), Some(every)) = (&self.notifier, self.watchdog) {
            let n = n.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    n.tell("WATCHDOG=1");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_interval_is_half_and_only_for_our_pid() {
        assert_eq!(
            watchdog_interval(Some("30000000"), None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_interval(Some("200000"), Some("7"), 7),
            Some(Duration::from_millis(100))
        );
        assert_eq!(watchdog_interval(Some("200000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("x"), None, 7), None);
        assert_eq!(watchdog_interval(None, Some("7"), 7), None);
    }

    #[test]
    fn messages_reach_a_path_socket_and_an_abstract_one() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("notify");
        let rx = UnixDatagram::bind(&path).expect("bind");
        let n = Notifier::new(&path.to_string_lossy()).expect("notifier");
        n.send("READY=1").expect("send");
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..len], b"READY=1");

        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let name = format!("warden-test-{}", std::process::id());
            let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
            let rx = UnixDatagram::bind_addr(&addr).expect("bind abstract");
            let n = Notifier::new(&format!("@{name}")).expect("notifier");
            n.send("STOPPING=1").expect("send");
            let len = rx.recv(&mut buf).expect("recv");
            assert_eq!(&buf[..len], b"STOPPING=1");
        }
    }

    #[test]
    fn a_relative_address_is_refused() {
        assert!(Notifier::new("relative/path").is_err());
    }
}
