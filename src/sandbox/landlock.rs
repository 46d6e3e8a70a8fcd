//! Landlock: the file rules (read and execute beneath some paths, write
//! beneath others, devices), TCP binds and connects by port (ABI 4), and
//! scoping (ABI 6: no signals to processes outside the sandbox, safex
//! included, and no abstract Unix sockets outside it). Requested at the
//! highest ABI vetted here (7); a kernel with less gets what it has (the
//! parent already said what is missing).

use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope,
};

use super::Spec;

const VETTED: ABI = ABI::V7;

/// The running kernel's Landlock ABI (0: none).
pub fn abi() -> u32 {
    super::sys::landlock_abi()
}

pub fn apply(spec: &Spec) -> Result<(), String> {
    if abi() == 0 {
        return if spec.enforce {
            Err("this kernel has no Landlock".into())
        } else {
            Ok(())
        };
    }
    let all = AccessFs::from_all(VETTED);
    let read = AccessFs::from_read(VETTED);
    let device = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::IoctlDev | AccessFs::Truncate;
    let mut net: BitFlags<AccessNet> = BitFlags::EMPTY;
    if !spec.bind_any {
        net |= AccessNet::BindTcp;
    }
    if spec.connect.is_some() {
        net |= AccessNet::ConnectTcp;
    }
    let e = |e: landlock::RulesetError| e.to_string();
    let mut ruleset = Ruleset::default().handle_access(all).map_err(e)?;
    if !net.is_empty() {
        ruleset = ruleset.handle_access(net).map_err(e)?;
    }
    let mut rules = ruleset
        .scope(Scope::AbstractUnixSocket | Scope::Signal)
        .map_err(e)?
        .create()
        .map_err(e)?;
    let lists = [
        (&spec.read, read),
        (&spec.write, all),
        (&spec.devices, device),
    ];
    for (paths, access) in lists {
        for path in paths {
            if let Some(rule) = beneath(path, access) {
                rules = rules.add_rule(rule).map_err(e)?;
            }
        }
    }
    for port in &spec.bind {
        rules = rules
            .add_rule(NetPort::new(*port, AccessNet::BindTcp))
            .map_err(e)?;
    }
    for port in spec.connect.iter().flatten() {
        rules = rules
            .add_rule(NetPort::new(*port, AccessNet::ConnectTcp))
            .map_err(e)?;
    }
    let status = rules.restrict_self().map_err(e)?;
    if status.ruleset == RulesetStatus::NotEnforced && spec.enforce {
        return Err("the kernel did not enforce the ruleset".into());
    }
    Ok(())
}

/// A rule for `path` (skipped when it does not exist: a grant of nothing),
/// with only the rights a file can carry when it is not a directory.
fn beneath(path: &Path, access: BitFlags<AccessFs>) -> Option<PathBeneath<PathFd>> {
    let fd = PathFd::new(path).ok()?;
    let is_dir = std::fs::metadata(path).is_ok_and(|m| m.is_dir());
    let access = if is_dir {
        access
    } else {
        access & AccessFs::from_file(VETTED)
    };
    Some(PathBeneath::new(fd, access))
}
