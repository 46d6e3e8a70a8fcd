//! The only `unsafe` in safex: the system calls no safe wrapper offers
//! (the Landlock ABI query, the seccomp mode query, installing a seccomp
//! filter, `unshare`, bringing loopback up) and taking ownership of the
//! descriptor the exec helper inherits. Each passes integers, or pointers
//! to memory that outlives the call.
#![allow(unsafe_code)]

/// The running kernel's Landlock ABI (0: none, or not enabled at boot).
pub fn landlock_abi() -> u32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: the documented version query: a null attribute pointer and
    // size 0, no ruleset created, nothing written.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(v).unwrap_or(0)
}

/// Whether seccomp is there (`PR_GET_SECCOMP` fails with `EINVAL` without it).
pub fn seccomp_available() -> bool {
    // SAFETY: a query with integer arguments only.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 }
}

/// `no_new_privs`, then the filter, on the calling thread (both are kept
/// across `execve`).
pub fn install_seccomp(filter: &[libc::sock_filter]) -> std::io::Result<()> {
    let len = u16::try_from(filter.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "filter too long"))?;
    let prog = libc::sock_fprog {
        len,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with integer arguments; seccomp with a pointer to
    // `prog`, which points into `filter`: both outlive the call, and the
    // kernel copies the program before it returns.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `unshare(2)` with these `CLONE_*` flags, on the calling thread.
pub fn unshare(flags: libc::c_int) -> std::io::Result<()> {
    // SAFETY: integer flags only; the calling thread is about to exec, and
    // safex's exec helper runs no other thread that could be confused by
    // a changed namespace.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Bring the loopback interface of the current network namespace up.
pub fn loopback_up() -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let sock = std::net::UdpSocket::bind("0.0.0.0:0")?;
    // SAFETY: `ifreq` is plain data, zeroed, its name set within bounds;
    // the two ioctls read and write only that struct.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The descriptor the exec helper inherited from safex (the socket pair's
/// end, numbered in the spec), as owned.
pub fn inherited_fd(fd: std::os::fd::RawFd) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: the number is the helper's own open descriptor, inherited
    // across exec for this one use and owned by nothing else in it.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}
