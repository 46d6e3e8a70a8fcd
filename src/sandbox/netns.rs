//! Tier 2: network by host name. The exec helper moves itself into a new
//! network namespace (and a user namespace when it is not root) that has
//! only loopback, creates the proxy's listening socket there, hands it to
//! safex through a socket pair (`SCM_RIGHTS`), then execs the program.
//! safex, outside, accepts on that socket and connects on the program's
//! behalf to the hosts the allow-list names (`proxy`). No bridge process,
//! no root, no route out of the namespace but the proxy.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::TcpListener;
use std::os::fd::{AsFd, OwnedFd, RawFd};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

/// The proxy's address inside every namespace: each has its own ports.
pub const PROXY_PORT: u16 = 3128;

/// The pair safex keeps one end of; the other is inherited by the helper
/// (its number goes in the spec).
pub struct Pair {
    pub parent: OwnedFd,
    pub child: OwnedFd,
}

pub fn pair() -> std::io::Result<Pair> {
    let (parent, child) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    // The child's end crosses `exec` into the helper.
    rustix::io::fcntl_setfd(&child, rustix::io::FdFlags::empty())?;
    Ok(Pair { parent, child })
}

/// In the helper: a namespace with only loopback up, the listener in it,
/// sent to safex over `fd`, which is then closed.
pub fn enter(fd: RawFd) -> Result<(), String> {
    let channel = super::sys::inherited_fd(fd);
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let mut flags = libc::CLONE_NEWNET;
    if uid != 0 {
        flags |= libc::CLONE_NEWUSER;
    }
    super::sys::unshare(flags).map_err(|e| format!("unshare: {e}"))?;
    if uid != 0 {
        // The same ids inside as outside: files it writes are the user's.
        let write = |p: &str, s: String| std::fs::write(p, s).map_err(|e| format!("{p}: {e}"));
        write("/proc/self/setgroups", "deny".into())?;
        write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
        write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    }
    super::sys::loopback_up().map_err(|e| format!("loopback: {e}"))?;
    let listener =
        TcpListener::bind(("127.0.0.1", PROXY_PORT)).map_err(|e| format!("proxy socket: {e}"))?;
    let fds = [listener.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        &channel,
        &[IoSlice::new(b"L")],
        &mut control,
        SendFlags::empty(),
    )
    .map_err(|e| format!("handing the proxy socket to safex: {e}"))?;
    Ok(())
}

/// In safex: the listener the helper sent, or `None` when it sent none
/// (it failed, and said why on stderr).
pub fn receive(channel: &OwnedFd) -> Option<TcpListener> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let got = rustix::net::recvmsg(
        channel,
        &mut [IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .ok()?;
    if got.bytes == 0 {
        return None;
    }
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg
            && let Some(fd) = fds.next()
        {
            return Some(TcpListener::from(fd));
        }
    }
    None
}
