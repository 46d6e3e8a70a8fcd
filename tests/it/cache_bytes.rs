//! Verified bytes only, every time they are used (issue 11, items 1, 2, 12
//! and 15): a cached archive is re-hashed before a tree is built from it, a
//! download on a full disk leaves nothing under a final name, the first real
//! error of an install wins, and `safex cache verify` checks every blob and
//! every environment.
//!
//! Each test runs the real binary against the in-process fixture registry or
//! index on 127.0.0.1, and tampers with the cache the way an attacker or a
//! failing disk would.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::env::{TestEnv, stderr};
use crate::support::fixture::*;
use crate::support::pyfixture::{PyIndex, PyPkg};

/// A file that exists only if code the test forbids has run.
fn marker(env: &TestEnv, what: &str) -> PathBuf {
    env.root().join(format!("MARKER-{what}"))
}

fn blobs(env: &TestEnv, algo: &str) -> Vec<PathBuf> {
    let dir = env.cache().join("v1").join("blobs").join(algo);
    let mut out: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// The one blob of `algo` in the cache.
#[track_caller]
fn only_blob(env: &TestEnv, algo: &str) -> PathBuf {
    let all = blobs(env, algo);
    assert_eq!(all.len(), 1, "expected one {algo} blob, found {all:?}");
    all[0].clone()
}

fn remove_envs(env: &TestEnv) {
    for eco in ["npm", "pypi"] {
        let dir = env.cache().join("v1").join(eco).join("env");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

fn hex_sha512(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha512::digest(bytes))
}

#[track_caller]
fn assert_no_marker(out: &Output, m: &Path) {
    assert!(
        !m.exists(),
        "code from a tampered archive ran\n{}",
        describe(out)
    );
}

// ---------------------------------------------------------------------------
// Item 1: re-hash at the moment of use
// ---------------------------------------------------------------------------

/// A cached tarball replaced by another valid tarball (same file name) is
/// never unpacked: it is found damaged, removed and downloaded again.
#[test]
fn npm_cached_tarball_replaced_by_another_is_downloaded_again() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("planted", "1.0.0", "console.log('original');"))
        .build();
    assert_ran(&reg.npx(&env, &["-y", "planted@1.0.0"]), "original\n");
    let blob = only_blob(&env, "sha512");
    let evil = Pkg::program("planted", "1.0.0", &js_touch(&marker(&env, "planted")));
    std::fs::write(&blob, evil.tarball()).unwrap();
    remove_envs(&env);

    let out = reg.npx(&env, &["-y", "planted@1.0.0"]);
    assert_ran(&out, "original\n");
    assert_no_marker(&out, &marker(&env, "planted"));
    assert_warning(&out, &["planted@1.0.0", "damaged", "downloading it again"]);
    assert_eq!(
        reg.tarball_hits("planted", "1.0.0"),
        2,
        "{}",
        describe(&out)
    );
    let now = std::fs::read(&blob).unwrap();
    assert_eq!(
        blob.file_name().unwrap().to_str().unwrap(),
        hex_sha512(&now),
        "the blob is named by its bytes again"
    );
}

/// A blob that is not a regular file is never read: a symbolic link (even
/// to the right bytes: the link can be changed after the check) or a FIFO
/// (which would hold the launch forever) is removed and fetched again.
#[test]
fn npm_cached_blob_that_is_a_link_or_a_fifo_is_replaced_not_read() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("linked", "1.0.0", "console.log('original');"))
        .build();
    assert_ran(&reg.npx(&env, &["-y", "linked@1.0.0"]), "original\n");
    let blob = only_blob(&env, "sha512");
    let elsewhere = env.root().join("elsewhere.tgz");
    std::fs::copy(&blob, &elsewhere).unwrap();

    std::fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &blob).unwrap();
    remove_envs(&env);
    let out = reg.npx(&env, &["-y", "linked@1.0.0"]);
    assert_ran(&out, "original\n");
    assert_warning(
        &out,
        &["linked@1.0.0", "symbolic link", "downloading it again"],
    );
    let meta = std::fs::symlink_metadata(&blob).unwrap();
    assert!(
        meta.file_type().is_file(),
        "the blob is a regular file again"
    );

    std::fs::remove_file(&blob).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&blob)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo failed");
    remove_envs(&env);
    let started = std::time::Instant::now();
    let out = reg.npx(&env, &["-y", "linked@1.0.0"]);
    assert_ran(&out, "original\n");
    assert_warning(&out, &["linked@1.0.0", "not a regular file"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the launch waited on the FIFO"
    );
    assert_eq!(reg.tarball_hits("linked", "1.0.0"), 3, "{}", describe(&out));
}

/// A second root that shares a package builds a new tree from the blob
/// store: the shared archive, replaced since, is re-hashed and fetched again,
/// never unpacked.
#[test]
fn npm_second_root_sharing_a_replaced_tarball_never_unpacks_it() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("first-root", "1.0.0", "console.log(require('shared'));")
                .dep("shared", "1.0.0"),
        )
        .package(
            Pkg::program("second-root", "1.0.0", "console.log(require('shared'));")
                .dep("shared", "1.0.0"),
        )
        .package(Pkg::new("shared", "1.0.0").file("index.js", "module.exports = 'shared';"))
        .build();
    assert_ran(&reg.npx(&env, &["-y", "first-root@1.0.0"]), "shared\n");
    let evil = Pkg::new("shared", "1.0.0").file(
        "index.js",
        format!(
            "{}\nmodule.exports = 'evil';",
            js_touch(&marker(&env, "shared"))
        ),
    );
    let shared = hex_sha512(&reg.tarball_bytes("shared", "1.0.0"));
    let blob = env.cache().join("v1/blobs/sha512").join(&shared);
    assert!(
        blob.is_file(),
        "the shared tarball is not cached at {}",
        blob.display()
    );
    std::fs::write(&blob, evil.tarball()).unwrap();

    let out = reg.npx(&env, &["-y", "second-root@1.0.0"]);
    assert_ran(&out, "shared\n");
    assert_no_marker(&out, &marker(&env, "shared"));
    assert_warning(&out, &["shared@1.0.0", "damaged"]);
    assert_eq!(reg.tarball_hits("shared", "1.0.0"), 2, "{}", describe(&out));
}

/// Offline, a cached tarball with one flipped byte is refused with a message
/// that says what broke and what to do, and is removed.
#[test]
fn npm_cached_tarball_with_a_flipped_byte_is_refused_offline() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("flipped", "1.0.0", "console.log('original');"))
        .build();
    assert_ran(&reg.npx(&env, &["-y", "flipped@1.0.0"]), "original\n");
    let blob = only_blob(&env, "sha512");
    flip_byte(&blob, 100);
    remove_envs(&env);

    let out = reg.npx(&env, &["--offline", "-y", "flipped@1.0.0"]);
    assert_code(&out, 4);
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    assert_stderr_mentions(
        &out,
        &[
            "archive `flipped@1.0.0` in the cache is damaged",
            "removed",
            "network access",
        ],
    );
    assert!(!blob.exists(), "the damaged blob is still there");
    // And once online again, it heals.
    assert_ran(&reg.npx(&env, &["-y", "flipped@1.0.0"]), "original\n");
}

/// Item 12: a truncated cached archive is repaired in the same launch, never
/// "installer stopped early" with the internal-error code.
#[test]
fn npm_truncated_cached_tarball_is_repaired_in_the_same_launch() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("cut", "1.0.0", "console.log(require('cut-dep'));")
                .dep("cut-dep", "1.0.0"),
        )
        .package(Pkg::new("cut-dep", "1.0.0").file("index.js", "module.exports = 'dep';"))
        .build();
    assert_ran(&reg.npx(&env, &["-y", "cut@1.0.0"]), "dep\n");
    for blob in blobs(&env, "sha512") {
        let bytes = std::fs::read(&blob).unwrap();
        std::fs::write(&blob, &bytes[..bytes.len() / 2]).unwrap();
    }
    remove_envs(&env);

    let out = reg.npx(&env, &["-y", "cut@1.0.0"]);
    assert_ran(&out, "dep\n");
    assert!(
        !stderr(&out).contains("stopped early"),
        "{}",
        describe(&out)
    );
    assert_warning(&out, &["damaged", "downloading it again"]);

    // Offline, the same damage is named, with exit 4, not 1.
    for blob in blobs(&env, "sha512") {
        let bytes = std::fs::read(&blob).unwrap();
        std::fs::write(&blob, &bytes[..bytes.len() / 2]).unwrap();
    }
    remove_envs(&env);
    let out = reg.npx(&env, &["--offline", "-y", "cut@1.0.0"]);
    assert_code(&out, 4);
    assert_stderr_mentions(&out, &["in the cache is damaged", "run again"]);
    assert!(
        !stderr(&out).contains("stopped early"),
        "{}",
        describe(&out)
    );
}

/// Item 12: offline with a locked tree and an empty cache, the installer
/// fails on the first package while more are still being sent. The real
/// error (offline, not cached: exit 6) must win every time, not a race.
#[test]
fn npm_offline_with_an_empty_cache_exits_6_every_time() {
    let env = TestEnv::new();
    let mut root = Pkg::program("many", "1.0.0", "console.log('many');");
    let mut builder = FixtureRegistry::builder();
    for i in 0..12 {
        let name = format!("many-dep-{i}");
        root = root.dep(&name, "1.0.0");
        builder = builder.package(Pkg::new(&name, "1.0.0").file("index.js", "module.exports = 1;"));
    }
    let reg = builder.package(root).build();
    assert_ran(&reg.npx(&env, &["-y", "many@1.0.0"]), "many\n");
    std::fs::remove_dir_all(env.cache()).unwrap();
    std::fs::create_dir_all(env.cache()).unwrap();

    for run_no in 0..10 {
        let out = reg.npx(&env, &["--offline", "-y", "many@1.0.0"]);
        assert_eq!(
            out.status.code(),
            Some(6),
            "run {run_no}: expected exit 6\n{}",
            describe(&out)
        );
        assert_stderr_mentions(&out, &["not in the cache and safex is offline"]);
        assert!(
            !stderr(&out).contains("stopped early"),
            "{}",
            describe(&out)
        );
    }
}

/// A cached wheel replaced by another valid wheel is never installed:
/// offline it is refused as damaged; online it is downloaded again.
#[test]
fn pypi_cached_wheel_replaced_by_another_is_never_installed() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(PyPkg::program("swapped", "1.0.0", "print('original')"))
        .build();
    assert_ran(&idx.uvx(&env, &["swapped==1.0.0"]), "original\n");
    let blob = only_blob(&env, "sha256");
    let m = marker(&env, "swapped");
    let evil = PyPkg::program(
        "swapped",
        "1.0.0",
        &format!(
            "open({}, 'w').write('x')",
            crate::support::pyfixture::py_str(&m.display().to_string())
        ),
    );
    std::fs::write(&blob, evil.wheel_for("py3-none-any")).unwrap();
    remove_envs(&env);

    let out = idx.uvx(&env, &["--offline", "swapped==1.0.0"]);
    assert_code(&out, 4);
    assert_stderr_mentions(
        &out,
        &["in the cache is damaged", "removed", "network access"],
    );
    assert_no_marker(&out, &m);
    assert!(!blob.exists(), "the damaged wheel is still there");

    std::fs::write(&blob, evil.wheel_for("py3-none-any")).unwrap();
    let out = idx.uvx(&env, &["swapped==1.0.0"]);
    assert_ran(&out, "original\n");
    assert_warning(&out, &["damaged", "downloading it again"]);
    assert_no_marker(&out, &m);
}

// ---------------------------------------------------------------------------
// Item 2: nothing unverified gets a final name, even on a full disk
// ---------------------------------------------------------------------------

/// Bytes that do not compress: the tarball is about as big as its file.
fn incompressible(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A tmpfs mounted on `dir` for the test's life; unmounted on drop. Mode
/// 0700: a cache directory others can write is refused.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_owned())),
            Ok(o) => {
                eprintln!(
                    "SKIP: cannot mount a tmpfs on `{}` ({}): the full-disk test did not run",
                    dir.display(),
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIP: cannot run `mount` ({e}): the full-disk test did not run");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Free bytes on the filesystem of `dir`, and its block size.
fn free_space(dir: &Path) -> (u64, u64) {
    let out = std::process::Command::new("stat")
        .args(["-f", "-c", "%a %S"])
        .arg(dir)
        .output()
        .expect("run stat -f");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut it = text.split_whitespace().map(|n| n.parse::<u64>().unwrap());
    let (blocks, size) = (it.next().unwrap(), it.next().unwrap());
    (blocks * size, size)
}

/// A download that hits ENOSPC on its *last* write (the one whose error
/// tokio's `File` only reports at flush) leaves no short file under its
/// hash, the error says the disk is full, and `cache verify` is clean.
#[test]
fn full_disk_leaves_no_short_blob_and_says_so() {
    let env = TestEnv::new();
    let Some(_mount) = Tmpfs::mount(&env.cache(), "4m") else {
        return;
    };
    // A tarball whose length is just over a whole number of blocks, so that
    // the disk can be left a few bytes short of it: only the final write fails.
    let (_, block) = free_space(&env.cache());
    let pkg = (0..400)
        .map(|i| {
            Pkg::program("bulky", "1.0.0", "console.log('bulky');")
                .file("blob.bin", incompressible((512 << 10) + i * 97))
        })
        .find(|p| (1..=512).contains(&(p.tarball().len() as u64 % block)))
        .expect("a tarball size just over a block boundary");
    let len = pkg.tarball().len() as u64;
    let reg = FixtureRegistry::builder().package(pkg).build();
    // Leave room for all but the last (len % block) bytes.
    std::fs::create_dir_all(env.cache().join("v1").join("tmp")).unwrap();
    let (free, _) = free_space(&env.cache());
    let room = len / block * block;
    assert!(free > room, "the tmpfs is too small for the test");
    std::fs::write(
        env.cache().join("filler"),
        vec![0u8; (free - room) as usize],
    )
    .unwrap();
    let (left, _) = free_space(&env.cache());
    assert!(left < len && left + block > len, "left {left} for {len}");

    let out = reg.npx(&env, &["-y", "bulky@1.0.0"]);
    assert_code(&out, 7);
    assert_stderr_mentions(&out, &["disk", "full"]);
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    for blob in blobs(&env, "sha512") {
        let bytes = std::fs::read(&blob).unwrap();
        assert_eq!(
            blob.file_name().unwrap().to_str().unwrap(),
            hex_sha512(&bytes),
            "a blob that is not its hash: {} ({} bytes)",
            blob.display(),
            bytes.len()
        );
    }
    assert!(
        blobs(&env, "sha512").is_empty(),
        "a blob landed on a full disk"
    );
    let partial: Vec<_> = std::fs::read_dir(env.cache().join("v1").join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("dl-"))
        .collect();
    assert!(partial.is_empty(), "partial downloads kept: {partial:?}");
    let out = run(env.safex().args(["cache", "verify"]));
    assert_code(&out, 0);

    // With room again, the same launch works.
    std::fs::remove_file(env.cache().join("filler")).unwrap();
    assert_ran(&reg.npx(&env, &["-y", "bulky@1.0.0"]), "bulky\n");
}

// ---------------------------------------------------------------------------
// Items 2 and 15: `safex cache verify` checks everything it can
// ---------------------------------------------------------------------------

fn verify(env: &TestEnv, deep: bool) -> Output {
    let mut cmd = env.safex();
    cmd.args(["cache", "verify"]);
    if deep {
        cmd.arg("--deep");
    }
    run(&mut cmd)
}

fn npm_env_dir(env: &TestEnv) -> PathBuf {
    let dir = env.cache().join("v1").join("npm").join("env");
    let all: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].clone()
}

/// Every blob is re-hashed against its own name, whether a lock names it or
/// not; damaged ones are named, removed, and the exit code says so.
#[test]
fn cache_verify_rehashes_every_blob_against_its_name_and_removes_damaged_ones() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("named", "1.0.0", "console.log('named');"))
        .build();
    assert_ran(&reg.npx(&env, &["-y", "named@1.0.0"]), "named\n");
    let out = verify(&env, false);
    assert_code(&out, 0);

    let real = only_blob(&env, "sha512");
    // A short file under a hash no lock names (what a full disk once left).
    let planted = real.with_file_name("ab".repeat(64));
    std::fs::write(&planted, b"\x1f\x8b short").unwrap();
    let out = verify(&env, false);
    assert_code(&out, 4);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(
        text.contains(&planted.display().to_string()),
        "{}",
        describe(&out)
    );
    assert!(
        text.contains("does not hash to its name"),
        "{}",
        describe(&out)
    );
    assert!(!planted.exists(), "the damaged blob was kept");
    assert!(real.exists(), "a good blob was removed");
    assert_code(&verify(&env, false), 0);

    // The locked one, truncated: named with its package.
    let bytes = std::fs::read(&real).unwrap();
    std::fs::write(&real, &bytes[..bytes.len() / 3]).unwrap();
    let out = verify(&env, false);
    assert_code(&out, 4);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("named@1.0.0"), "{}", describe(&out));
    assert!(!real.exists());
    // The environment built from it is still whole.
    assert_ran(&reg.npx(&env, &["-y", "named@1.0.0"]), "named\n");
}

/// An npm environment is checked against its lock entry: a missing file or
/// marker is found; `--deep` also finds a file whose contents changed.
#[test]
fn cache_verify_checks_npm_environments_and_deep_rereads_their_files() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("treed", "1.0.0", "console.log(require('treed-dep'));")
                .dep("treed-dep", "1.0.0"),
        )
        .package(Pkg::new("treed-dep", "1.0.0").file("index.js", "module.exports = 'dep';"))
        .build();
    assert_ran(&reg.npx(&env, &["-y", "treed@1.0.0"]), "dep\n");
    assert_code(&verify(&env, true), 0);
    let dir = npm_env_dir(&env);

    // Edited file: only --deep sees it.
    let index = dir.join("node_modules/treed-dep/index.js");
    std::fs::write(&index, "module.exports = 'evil';").unwrap();
    assert_code(&verify(&env, false), 0);
    let out = verify(&env, true);
    assert_code(&out, 4);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("node_modules/treed-dep/index.js")
            && text.contains("differs from its archive"),
        "{}",
        describe(&out)
    );
    assert!(text.contains("fix:"), "{}", describe(&out));

    // A missing package.json is found without --deep.
    std::fs::remove_file(dir.join("node_modules/treed-dep/package.json")).unwrap();
    let out = verify(&env, false);
    assert_code(&out, 4);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("node_modules/treed-dep/package.json` is missing"),
        "{}",
        describe(&out)
    );

    // A damaged marker is reported as such.
    std::fs::write(dir.join(".safex-env.json"), "{ not json").unwrap();
    let out = verify(&env, false);
    assert_code(&out, 4);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("damaged completion marker"),
        "{}",
        describe(&out)
    );
}

/// An unreadable environment is reported, not skipped. (As root, permissions
/// do not stop reads, so an unreadable marker is made by making it a
/// directory.)
#[test]
fn cache_verify_reports_unreadable_entries() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("unread", "1.0.0", "console.log('u');"))
        .build();
    assert_ran(&reg.npx(&env, &["-y", "unread@1.0.0"]), "u\n");
    let dir = npm_env_dir(&env);
    std::fs::remove_file(dir.join(".safex-env.json")).unwrap();
    std::fs::create_dir(dir.join(".safex-env.json")).unwrap();
    let out = verify(&env, false);
    assert_code(&out, 4);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("cannot be read"),
        "{}",
        describe(&out)
    );
}

/// A PyPI environment: a deleted module is found; `--deep` finds an edited
/// one against the wheel's `RECORD`.
#[test]
fn cache_verify_checks_pypi_environments_against_record() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(PyPkg::program("venvy", "1.0.0", "print('venvy')"))
        .build();
    assert_ran(&idx.uvx(&env, &["venvy==1.0.0"]), "venvy\n");
    assert_code(&verify(&env, true), 0);
    let site = std::fs::read_dir(env.cache().join("v1/pypi/env"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let cli = crate::support::env::files_under(&site)
        .into_iter()
        .find(|p| p.ends_with("venvy/cli.py"))
        .expect("venvy/cli.py in the venv");
    std::fs::write(&cli, "def main():\n    print('evil')\n").unwrap();
    assert_code(&verify(&env, false), 0);
    let out = verify(&env, true);
    assert_code(&out, 4);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("venvy/cli.py` differs from its `RECORD`"),
        "{}",
        describe(&out)
    );
    let dist_info = crate::support::env::files_under(&site)
        .into_iter()
        .find(|p| p.ends_with("RECORD"))
        .unwrap();
    std::fs::remove_dir_all(dist_info.parent().unwrap()).unwrap();
    let out = verify(&env, false);
    assert_code(&out, 4);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("has no `.dist-info`"),
        "{}",
        describe(&out)
    );
}
