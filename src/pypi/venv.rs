//! A real virtual environment, built in a staging directory and renamed into
//! the cache: `pyvenv.cfg`, `bin/python` linking to the base interpreter, and
//! an empty `site-packages`. A real venv, so `sys.executable` works for
//! servers that re-launch themselves, and the base Python's own
//! site-packages stay out.

use std::path::Path;

use crate::error::{Error, Result};
use crate::pypi::interpreter::Info;
use crate::pypi::wheel::VenvLayout;

/// Lay out a venv in `staging` that will live at `final_dir`. Paths written
/// into files (shebangs) name `final_dir`; files are written into `staging`.
pub fn create(staging: &Path, final_dir: &Path, info: &Info) -> Result<VenvLayout> {
    let site = staging.join(info.site_packages_rel());
    fs_err::create_dir_all(&site)?;
    let bin = staging.join(bin_dir());
    fs_err::create_dir_all(&bin)?;
    let home = info
        .executable
        .parent()
        .ok_or_else(|| Error::internal("interpreter path has no parent"))?;
    let cfg = format!(
        "home = {}\ninclude-system-site-packages = false\nversion = {}\nexecutable = {}\ncommand = safex\n",
        home.display(),
        info.full_version,
        info.executable.display()
    );
    fs_err::write(staging.join("pyvenv.cfg"), cfg)?;
    link_interpreter(&bin, info)?;
    let include = staging
        .join("include")
        .join("site")
        .join(format!("python{}.{}", info.major, info.minor));
    Ok(VenvLayout {
        purelib: site.clone(),
        platlib: site,
        scripts: bin,
        data: staging.to_path_buf(),
        include,
        python: final_dir.join(bin_dir()).join(python_name()),
    })
}

pub fn bin_dir() -> &'static str {
    if cfg!(windows) { "Scripts" } else { "bin" }
}

pub fn python_name() -> &'static str {
    if cfg!(windows) {
        "python.exe"
    } else {
        "python"
    }
}

#[cfg(unix)]
fn link_interpreter(bin: &Path, info: &Info) -> Result<()> {
    for name in [
        "python".to_owned(),
        "python3".to_owned(),
        format!("python{}.{}", info.major, info.minor),
    ] {
        std::os::unix::fs::symlink(&info.executable, bin.join(&name))
            .map_err(|e| Error::io(format!("cannot link `{}` in the venv: {e}", name)))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn link_interpreter(bin: &Path, info: &Info) -> Result<()> {
    fs_err::copy(&info.executable, bin.join(python_name()))?;
    Ok(())
}
