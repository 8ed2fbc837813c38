//! The protocol against a real unix datagram listener, as systemd runs it.

use std::ffi::OsStr;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use super::*;

fn recv(listener: &UnixDatagram) -> String {
    listener
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = listener.recv(&mut buf).unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn sends_ready_watchdog_status_and_stopping_to_a_path_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let listener = UnixDatagram::bind(&path).unwrap();
    let n = Notifier::from_parts(Some(path.as_os_str()), None, None, 1).unwrap();
    assert!(n.is_enabled());

    n.ready("running 3 checks").unwrap();
    assert_eq!(recv(&listener), "READY=1\nSTATUS=running 3 checks");
    n.watchdog().unwrap();
    assert_eq!(recv(&listener), "WATCHDOG=1");
    n.status("reloaded:\n2 checks").unwrap();
    assert_eq!(recv(&listener), "STATUS=reloaded: 2 checks");
    n.stopping().unwrap();
    assert_eq!(recv(&listener), "STOPPING=1\nSTATUS=stopping");
}

#[test]
fn sends_to_an_abstract_socket_named_with_at() {
    let name = format!("outpost-sd-notify-test-{}", std::process::id());
    let listener =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    let value = format!("@{name}");
    let n = Notifier::from_parts(Some(OsStr::new(&value)), None, None, 1).unwrap();
    n.ready("up").unwrap();
    assert_eq!(recv(&listener), "READY=1\nSTATUS=up");
}

#[test]
fn without_notify_socket_everything_is_a_successful_no_op() {
    let n = Notifier::from_parts(None, Some("1000000"), None, 1).unwrap();
    assert!(!n.is_enabled());
    assert_eq!(n.watchdog_interval(), None);
    n.ready("x").unwrap();
    n.watchdog().unwrap();
    n.stopping().unwrap();
    let empty = Notifier::from_parts(Some(OsStr::new("")), None, None, 1).unwrap();
    assert!(!empty.is_enabled());
}

#[test]
fn a_vanished_listener_is_a_send_error_not_a_panic_or_a_stall() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone.sock");
    let n = Notifier::from_parts(Some(path.as_os_str()), None, None, 1).unwrap();
    let err = n.watchdog().unwrap_err();
    assert!(matches!(err, NotifyError::Send { .. }), "{err}");
    assert!(err.to_string().contains("gone.sock"), "{err}");
}

#[test]
fn relative_paths_are_refused() {
    let err = Notifier::from_parts(Some(OsStr::new("notify.sock")), None, None, 1).unwrap_err();
    assert!(matches!(err, NotifyError::BadAddress { .. }), "{err}");
}

#[test]
fn watchdog_pings_at_half_the_timeout_only_for_our_pid() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("n.sock");
    let _listener = UnixDatagram::bind(&sock).unwrap();
    let s = Some(sock.as_os_str());
    let at = |usec, pid| {
        Notifier::from_parts(s, usec, pid, 42)
            .unwrap()
            .watchdog_interval()
    };
    assert_eq!(at(Some("30000000"), None), Some(Duration::from_secs(15)));
    assert_eq!(
        at(Some("200000"), Some("42")),
        Some(Duration::from_millis(100))
    );
    assert_eq!(
        at(Some("200000"), Some("43")),
        None,
        "watchdog of another pid"
    );
    assert_eq!(at(Some("0"), None), None);
    assert_eq!(at(None, None), None);
    let err = Notifier::from_parts(s, Some("soon"), None, 42).unwrap_err();
    assert!(matches!(err, NotifyError::BadWatchdog { .. }), "{err}");
}
