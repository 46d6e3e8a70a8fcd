//! `safex-secret:file:/path`: the one fallback where no credential store is
//! reachable (SSH, WSL, CI), and only when written explicitly. The file must
//! be a regular file owned by this user that nobody else can read or write
//! (mode 0600 or stricter), not a symlink; its content, less one trailing
//! newline, is the value. Checked on the opened file, so a file swapped
//! between the check and the read is still the one checked.

use std::path::Path;

use crate::error::{Error, Kind, Result};

/// The largest value a file may hold.
const MAX: u64 = 1 << 20;

fn refused(path: &Path, why: &str) -> Error {
    Error::new(
        Kind::Policy,
        format!("the secret file `{}` {why}", path.display()),
    )
    .with_hint(format!(
        "make it yours and private: `chown \"$USER\" {p} && chmod 600 {p}`",
        p = path.display()
    ))
}

#[cfg(unix)]
pub fn read(path: &Path) -> Result<String> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_nofollow())
        .open(path);
    let f = match f {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(refused(path, "is a symbolic link; name the file itself"));
        }
        Err(e) => {
            return Err(Error::io(format!(
                "cannot read the secret file `{}`: {e}",
                path.display()
            ))
            .with_hint("check the path in the `safex-secret:file:` reference"));
        }
    };
    let meta = f
        .metadata()
        .map_err(|e| Error::io(format!("cannot stat `{}`: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(refused(path, "is not a regular file"));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(refused(
            path,
            &format!("belongs to uid {}, not to this user (uid {me})", meta.uid()),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(refused(
            path,
            &format!(
                "can be read or written by others (mode {:o})",
                meta.mode() & 0o777
            ),
        ));
    }
    if meta.len() > MAX {
        return Err(refused(path, "is larger than 1 MiB; it is not one secret"));
    }
    let mut raw = Vec::new();
    f.take(MAX)
        .read_to_end(&mut raw)
        .map_err(|e| Error::io(format!("cannot read `{}`: {e}", path.display())))?;
    if raw.ends_with(b"\n") {
        raw.pop();
        if raw.ends_with(b"\r") {
            raw.pop();
        }
    }
    let value = String::from_utf8(raw).map_err(|_| refused(path, "is not UTF-8 text"))?;
    if value.is_empty() || value.contains('\0') {
        return Err(refused(path, "is empty or holds a NUL byte"));
    }
    Ok(value)
}

#[cfg(unix)]
fn libc_nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

#[cfg(not(unix))]
pub fn read(path: &Path) -> Result<String> {
    Err(Error::usage(format!(
        "`safex-secret:file:{}`: file references are supported on Unix only, where safex can check the file's owner and mode",
        path.display()
    )))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_a_private_regular_file_of_ours() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t");
        std::fs::write(&p, "s3cr3t-value\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read(&p).unwrap(), "s3cr3t-value");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = read(&p).unwrap_err();
        assert!(e.message.contains("mode 640"), "{}", e.message);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(read(&p).is_ok());
        let link = d.path().join("l");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(read(&link).unwrap_err().message.contains("symbolic link"));
        assert!(read(d.path()).is_err());
        assert_eq!(read(&d.path().join("none")).unwrap_err().kind, Kind::Io);
        std::fs::write(d.path().join("e"), "\n").unwrap();
        std::fs::set_permissions(d.path().join("e"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        assert!(
            read(&d.path().join("e"))
                .unwrap_err()
                .message
                .contains("empty")
        );
    }
}
