//! Test wheels: a minimal `demo-pkg 1.0` built member by member, with its `RECORD` computed or given, installed into a temporary environment.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

use crate::archive::Limits;
use crate::error::{Error, Kind, Result};
use crate::policy::PthPolicy;
use crate::pypi::wheel::{InstalledWheel, SharedFiles, VenvLayout, install_wheel};

pub(super) const DIST: &str = "demo_pkg-1.0";
pub(super) const WHEEL: &str =
    "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n";

/// One wheel member: name, content, Unix mode (a symlink's content is
/// its target).
pub(super) type File = (String, Vec<u8>, u32);

pub(super) fn f(name: &str, data: &str) -> File {
    (name.to_owned(), data.as_bytes().to_vec(), 0o644)
}

/// The members of a minimal `demo-pkg 1.0` wheel plus `extra`.
pub(super) fn files(extra: Vec<File>) -> Vec<File> {
    let mut all = vec![
        f("demo_pkg/__init__.py", "def main():\n    return 0\n"),
        f(
            &format!("{DIST}.dist-info/METADATA"),
            "Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n",
        ),
        f(&format!("{DIST}.dist-info/WHEEL"), WHEEL),
    ];
    all.extend(extra);
    all
}

pub(super) fn record_row(name: &str, data: &[u8]) -> String {
    let hash = URL_SAFE_NO_PAD.encode(Sha256::digest(data));
    format!("{name},sha256={hash},{}\n", data.len())
}

/// A RECORD listing `files` correctly, and itself without a hash.
pub(super) fn record_for(files: &[File]) -> String {
    let mut record: String = files.iter().map(|(n, d, _)| record_row(n, d)).collect();
    record.push_str(&format!("{DIST}.dist-info/RECORD,,\n"));
    record
}

/// Write the wheel: `files`, then `RECORD` (computed unless given).
pub(super) fn build(dir: &Path, files: &[File], record: Option<String>) -> PathBuf {
    let path = dir.join("demo_pkg-1.0-py3-none-any.whl");
    let record = record.unwrap_or_else(|| record_for(files));
    let mut w = zip::ZipWriter::new(fs_err::File::create(&path).unwrap());
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, data, mode) in files {
        if mode & 0o170_000 == 0o120_000 {
            let target = std::str::from_utf8(data).unwrap();
            w.add_symlink(name.as_str(), target, options).unwrap();
            continue;
        }
        w.start_file(name.as_str(), options.unix_permissions(*mode))
            .unwrap();
        w.write_all(data).unwrap();
    }
    w.start_file(format!("{DIST}.dist-info/RECORD"), options)
        .unwrap();
    w.write_all(record.as_bytes()).unwrap();
    w.finish().unwrap();
    path
}

pub(super) fn layout(root: &Path) -> VenvLayout {
    let venv = root.join("venv");
    let site = venv.join("lib/python3.12/site-packages");
    fs_err::create_dir_all(&site).unwrap();
    VenvLayout {
        purelib: site.clone(),
        platlib: site,
        scripts: venv.join("bin"),
        data: venv.clone(),
        include: venv.join("include"),
        python: venv.join("bin/python"),
    }
}

pub(super) fn install(whl: &Path, layout: &VenvLayout, pth: PthPolicy) -> Result<InstalledWheel> {
    install_wheel(
        whl,
        layout,
        "demo-pkg",
        "1.0",
        pth,
        &Limits::default(),
        &SharedFiles::default(),
    )
}

/// Install must fail with `kind`, naming the wheel and `needle`.
#[track_caller]
pub(super) fn refused(files: &[File], record: Option<String>, kind: Kind, needle: &str) -> Error {
    let tmp = tempfile::tempdir().unwrap();
    let whl = build(tmp.path(), files, record);
    let err = install(&whl, &layout(tmp.path()), PthPolicy::RefuseExecutable)
        .expect_err("install should be refused");
    assert_eq!(err.kind, kind, "{err}");
    assert!(err.message.starts_with("wheel `demo-pkg==1.0` "), "{err}");
    assert!(err.message.contains(needle), "{needle:?} not in: {err}");
    err
}
