//! The only `unsafe` in safex: three system calls no safe wrapper offers
//! (the Landlock ABI query, the seccomp mode query, installing a seccomp
//! filter). Each passes integers, or a pointer to memory that outlives the
//! call.
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
