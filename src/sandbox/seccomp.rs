//! A seccomp filter for what Landlock cannot see: other processes'
//! memory (`ptrace`, `process_vm_*`), `io_uring` (its operations bypass
//! this filter), kernel keyrings, BPF and perf, the socket kinds a server
//! has no business opening (raw, packet, VSOCK, new Unix sockets — which
//! reach the D-Bus session, `ssh-agent`, Docker — and UDP or IP at all
//! where the network is closed), terminal input injection (`TIOCSTI`), and
//! every syscall entry but the native one (32-bit `int 0x80`, x32).
//!
//! Written as a small classic-BPF program (no library): the checks are few
//! and each one is read here as it runs.

use super::Spec;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;

// struct seccomp_data: nr, arch, instruction_pointer, args[6] (little endian).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn arg(i: u32) -> u32 {
    16 + 8 * i
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_AND_K: u16 = 0x54;
const BPF_RET_K: u16 = 0x06;

/// Is seccomp filtering there?
pub fn available() -> bool {
    super::sys::seccomp_available()
}

/// One instruction; jumps name labels, resolved by `assemble`.
#[derive(Clone, Copy)]
enum Op {
    Load(u32),
    And(u32),
    /// If A == k go to `then`, else fall through.
    JumpEq(u32, Label),
    JumpGe(u32, Label),
    Ret(u32),
    Mark(Label),
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Label {
    Eperm,
    Enosys,
    Eacces,
    Allow,
    Socket,
    Inet,
    Netlink,
    Ioctl,
    Native,
}

fn errno(e: i32) -> u32 {
    RET_ERRNO | (e as u32 & 0xffff)
}

/// The filter for `spec`, as operations.
fn program(spec: &Spec) -> Vec<Op> {
    use Label::*;
    use Op::*;
    let mut ops = vec![
        Load(OFF_ARCH),
        JumpEq(AUDIT_ARCH, Native),
        Ret(RET_KILL_PROCESS),
        Mark(Native),
    ];
    ops.push(Load(OFF_NR));
    #[cfg(target_arch = "x86_64")]
    ops.push(JumpGe(0x4000_0000, Enosys));
    for nr in [
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
    ] {
        ops.push(JumpEq(nr as u32, Eperm));
    }
    for nr in [
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ] {
        ops.push(JumpEq(nr as u32, Enosys));
    }
    ops.push(JumpEq(libc::SYS_socket as u32, Socket));
    ops.push(JumpEq(libc::SYS_ioctl as u32, Ioctl));
    ops.push(Ret(RET_ALLOW));

    ops.push(Mark(Socket));
    ops.push(Load(arg(0)));
    ops.push(JumpEq(libc::AF_INET as u32, Inet));
    ops.push(JumpEq(libc::AF_INET6 as u32, Inet));
    ops.push(JumpEq(libc::AF_NETLINK as u32, Netlink));
    // AF_UNIX (socketpair stays allowed), AF_PACKET, AF_VSOCK and the rest.
    ops.push(Ret(errno(libc::EPERM)));

    ops.push(Mark(Inet));
    if !spec.inet {
        ops.push(Ret(errno(libc::EACCES)));
    }
    ops.push(Load(arg(1)));
    ops.push(And(0xf)); // the type without SOCK_NONBLOCK / SOCK_CLOEXEC
    ops.push(JumpEq(libc::SOCK_STREAM as u32, Allow));
    if spec.udp {
        ops.push(JumpEq(libc::SOCK_DGRAM as u32, Allow));
    }
    ops.push(Ret(errno(libc::EPERM)));

    // Interface listings (`getifaddrs`) use NETLINK_ROUTE; nothing else.
    ops.push(Mark(Netlink));
    ops.push(Load(arg(2)));
    ops.push(JumpEq(libc::NETLINK_ROUTE as u32, Allow));
    ops.push(Ret(errno(libc::EPERM)));

    ops.push(Mark(Ioctl));
    ops.push(Load(arg(1)));
    ops.push(JumpEq(libc::TIOCSTI as u32, Eperm));
    ops.push(JumpEq(0x541C, Eperm)); // TIOCLINUX
    ops.push(Ret(RET_ALLOW));

    ops.push(Mark(Eperm));
    ops.push(Ret(errno(libc::EPERM)));
    ops.push(Mark(Enosys));
    ops.push(Ret(errno(libc::ENOSYS)));
    ops.push(Mark(Eacces));
    ops.push(Ret(errno(libc::EACCES)));
    ops.push(Mark(Allow));
    ops.push(Ret(RET_ALLOW));
    ops
}

/// Classic BPF with labels resolved to forward offsets.
fn assemble(ops: &[Op]) -> Result<Vec<libc::sock_filter>, String> {
    let mut at = std::collections::HashMap::new();
    let mut n = 0usize;
    for op in ops {
        match op {
            Op::Mark(l) => {
                at.insert(*l, n);
            }
            _ => n += 1,
        }
    }
    let mut out = Vec::with_capacity(n);
    for op in ops {
        let i = out.len();
        let jump = |l: &Label| -> Result<u8, String> {
            let to = *at.get(l).ok_or_else(|| format!("no label {l:?}"))?;
            to.checked_sub(i + 1)
                .and_then(|d| u8::try_from(d).ok())
                .ok_or_else(|| format!("jump to {l:?} out of range"))
        };
        let insn = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
        out.push(match op {
            Op::Mark(_) => continue,
            Op::Load(off) => insn(BPF_LD_W_ABS, 0, 0, *off),
            Op::And(k) => insn(BPF_AND_K, 0, 0, *k),
            Op::JumpEq(k, l) => insn(BPF_JEQ_K, jump(l)?, 0, *k),
            Op::JumpGe(k, l) => insn(BPF_JGE_K, jump(l)?, 0, *k),
            Op::Ret(k) => insn(BPF_RET_K, 0, 0, *k),
        });
    }
    Ok(out)
}

/// Install the filter on this thread (kept across `execve`); `no_new_privs`
/// first, as an unprivileged filter needs (Landlock has set it already).
pub fn apply(spec: &Spec) -> Result<(), String> {
    if !available() {
        return if spec.enforce {
            Err("this kernel has no seccomp filters".into())
        } else {
            Ok(())
        };
    }
    let filter = assemble(&program(spec))?;
    super::sys::install_seccomp(&filter).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_jump_lands_forward_and_in_range() {
        for inet in [false, true] {
            for udp in [false, true] {
                let spec = Spec {
                    inet,
                    udp,
                    ..Spec::default()
                };
                let filter = assemble(&program(&spec)).unwrap();
                assert!(filter.len() < 100, "{}", filter.len());
                let last = filter.last().unwrap();
                assert_eq!((last.code, last.k), (BPF_RET_K, RET_ALLOW));
                // The first check is the architecture, and a foreign one dies.
                assert_eq!((filter[0].code, filter[0].k), (BPF_LD_W_ABS, OFF_ARCH));
                assert_eq!((filter[2].code, filter[2].k), (BPF_RET_K, RET_KILL_PROCESS));
            }
        }
    }

    #[test]
    fn a_closed_network_refuses_ip_sockets_before_the_type() {
        let closed = assemble(&program(&Spec::default())).unwrap();
        let open = assemble(&program(&Spec {
            inet: true,
            udp: true,
            ..Spec::default()
        }))
        .unwrap();
        let eacces = errno(libc::EACCES);
        assert!(
            closed
                .iter()
                .filter(|i| i.code == BPF_RET_K && i.k == eacces)
                .count()
                >= 2
        );
        assert_eq!(
            open.iter()
                .filter(|i| i.code == BPF_RET_K && i.k == eacces)
                .count(),
            1
        );
    }
}
