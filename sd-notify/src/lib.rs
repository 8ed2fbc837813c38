//! `outpost-sd-notify`: tells systemd how an Outpost service is doing —
//! the `sd_notify(3)` protocol, without libsystemd and without `unsafe`.
//!
//! Why: the units are `Type=notify` with `WatchdogSec=`. systemd considers
//! the service started only when it says `READY=1` (after its config
//! loaded and its buffer or store opened, so a unit that is "active" really
//! works), restarts it when its main loop stops sending `WATCHDOG=1`, and
//! shows its `STATUS=` line in `systemctl status`.
//!
//! Protocol: each message is one datagram of `KEY=VALUE` lines sent to the
//! unix datagram socket named by `$NOTIFY_SOCKET` — a filesystem path, or
//! an abstract-namespace name when it starts with `@`. `$WATCHDOG_USEC` is
//! the watchdog timeout; we ping at half of it. `$WATCHDOG_PID`, when set,
//! must be our own pid or the watchdog is meant for another process.
//!
//! Invariants:
//! * Without `$NOTIFY_SOCKET` every call is a no-op that succeeds, so the
//!   binaries behave the same outside systemd (tests, containers, by hand).
//! * Sending never blocks: the socket is non-blocking; a full queue is an
//!   error the caller logs, never a stall of the main loop.
//! * Only one line of `STATUS=` text is sent: newlines are replaced.

#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// A problem talking to the service manager. None is fatal: the binaries
/// log it and go on (systemd notices a missing `READY=1` on its own).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET={value:?} is not a socket address systemd uses: {reason}\n  fix: unset NOTIFY_SOCKET when not running under systemd")]
    BadAddress { value: String, reason: &'static str },
    #[error("WATCHDOG_USEC={value:?} is not a number of microseconds\n  fix: set WatchdogSec= in the unit (systemd sets WATCHDOG_USEC itself)")]
    BadWatchdog { value: String },
    #[error("cannot create a unix datagram socket: {0}")]
    Socket(#[source] io::Error),
    #[error("cannot send {message:?} to NOTIFY_SOCKET {socket}: {source}")]
    Send {
        message: String,
        socket: String,
        #[source]
        source: io::Error,
    },
}

/// Where notifications go.
#[derive(Debug)]
struct Target {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// `$NOTIFY_SOCKET` as given, for messages.
    name: String,
}

/// The service's line to systemd. Cheap to share (`&Notifier` is enough:
/// sends take `&self`).
#[derive(Debug)]
pub struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier {
            target: None,
            watchdog: None,
        }
    }

    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`.
    pub fn from_env() -> Result<Notifier, NotifyError> {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        Notifier::from_parts(
            socket.as_deref(),
            usec.as_deref(),
            pid.as_deref(),
            std::process::id(),
        )
    }

    /// As [`Notifier::from_env`], from explicit values (for tests).
    pub fn from_parts(
        notify_socket: Option<&OsStr>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        our_pid: u32,
    ) -> Result<Notifier, NotifyError> {
        let Some(value) = notify_socket.filter(|v| !v.is_empty()) else {
            return Ok(Notifier::disabled());
        };
        let addr = parse_address(value)?;
        let socket = UnixDatagram::unbound().map_err(NotifyError::Socket)?;
        socket.set_nonblocking(true).map_err(NotifyError::Socket)?;
        let watchdog = watchdog_interval(watchdog_usec, watchdog_pid, our_pid)?;
        Ok(Notifier {
            target: Some(Target {
                socket,
                addr,
                name: value.to_string_lossy().into_owned(),
            }),
            watchdog,
        })
    }

    /// True when notifications go somewhere.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// How often to send `WATCHDOG=1` (half the watchdog timeout), or
    /// `None` when no watchdog is armed for this process.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// `READY=1` with a status line: startup finished.
    pub fn ready(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    /// `WATCHDOG=1`: the main loop is alive.
    pub fn watchdog(&self) -> Result<(), NotifyError> {
        self.send("WATCHDOG=1")
    }

    /// `STOPPING=1`: shutdown has begun.
    pub fn stopping(&self) -> Result<(), NotifyError> {
        self.send("STOPPING=1\nSTATUS=stopping")
    }

    /// `STATUS=`: a line for `systemctl status`.
    pub fn status(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("STATUS={}", one_line(status)))
    }

    /// Sends one raw message (`KEY=VALUE` lines). A no-op when disabled.
    pub fn send(&self, message: &str) -> Result<(), NotifyError> {
        let Some(t) = &self.target else {
            return Ok(());
        };
        match t.socket.send_to_addr(message.as_bytes(), &t.addr) {
            Ok(_) => Ok(()),
            Err(source) => Err(NotifyError::Send {
                message: message.replace('\n', " "),
                socket: t.name.clone(),
                source,
            }),
        }
    }
}

/// `/path` or `@abstract-name`, as systemd hands out.
fn parse_address(value: &OsStr) -> Result<SocketAddr, NotifyError> {
    let bytes = value.as_bytes();
    let bad = |reason| NotifyError::BadAddress {
        value: value.to_string_lossy().into_owned(),
        reason,
    };
    match bytes.first() {
        Some(b'@') => {
            SocketAddr::from_abstract_name(&bytes[1..]).map_err(|_| bad("abstract name too long"))
        }
        Some(b'/') => SocketAddr::from_pathname(value).map_err(|_| bad("path too long")),
        _ => Err(bad("neither an absolute path nor an @abstract name")),
    }
}

fn watchdog_interval(
    usec: Option<&str>,
    pid: Option<&str>,
    our_pid: u32,
) -> Result<Option<Duration>, NotifyError> {
    let Some(usec) = usec.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let micros: u64 = usec.trim().parse().map_err(|_| NotifyError::BadWatchdog {
        value: usec.to_string(),
    })?;
    if micros == 0 {
        return Ok(None);
    }
    if let Some(pid) = pid.filter(|v| !v.is_empty()) {
        if pid.trim().parse::<u32>().ok() != Some(our_pid) {
            return Ok(None);
        }
    }
    Ok(Some(Duration::from_micros(micros / 2)))
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests;
