//! The cache is safex's alone, a failed launch leaves nothing behind, and a
//! damaged environment heals (issue 11, items 3, 13 and 14): each test runs
//! the real binary against the in-process npm fixture registry (one PyPI
//! case against the PyPI fixture), and plants the damage on disk itself.
//!
//! "Another user" is uid 65534 (`nobody`); the tests that need to change a
//! file's owner or run safex as that user need root, and say loudly when
//! they skip.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::env::{TestEnv, is_root, stderr};
use crate::support::fixture::*;

const NOBODY: u32 = 65534;

/// Skip a test that needs root, loudly (never a silent pass).
macro_rules! need_root {
    ($what:expr) => {
        if !is_root() {
            eprintln!(
                "SKIPPED: {} needs root (to chown to uid {NOBODY} / run as it); not run",
                $what
            );
            return;
        }
    };
}

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(uid)).unwrap();
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn v1(env: &TestEnv) -> PathBuf {
    env.cache().join("v1")
}

/// Entries left in `v1/tmp` (none is the goal after any launch).
fn tmp_entries(env: &TestEnv) -> Vec<String> {
    match std::fs::read_dir(v1(env).join("tmp")) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The one environment in the cache (tests build exactly one).
fn the_env(env: &TestEnv) -> PathBuf {
    let dir = v1(env).join("npm/env");
    let mut all: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(all.len(), 1, "environments: {all:?}");
    all.pop().unwrap()
}

/// A file that exists only if the program ran.
fn ran(env: &TestEnv) -> PathBuf {
    env.root().join("ran-program")
}

/// A registry with `app@1.0.0` (which leaves the `ran` marker and prints
/// `app ran`) and its dependency.
fn app_registry(env: &TestEnv) -> FixtureRegistry {
    let js = format!(
        "{} console.log('app ran', require('app-dep'));",
        js_touch(&ran(env))
    );
    FixtureRegistry::builder()
        .package(Pkg::program("app", "1.0.0", &js).dep("app-dep", "^1.0.0"))
        .package(Pkg::new("app-dep", "1.0.0").file("index.js", "module.exports = 'dep';"))
        .build()
}

/// `app` launched once (cold), so the next launch is warm; the marker reset.
fn warmed_up(env: &TestEnv) -> FixtureRegistry {
    let reg = app_registry(env);
    assert_ran(&reg.npx(env, &["-y", "app@1.0.0"]), "app ran dep\n");
    std::fs::remove_file(ran(env)).unwrap();
    reg.clear_log();
    reg
}

/// Refused with `code` ([`assert_refusal_message`]), the program never run.
/// What the cache checks leave behind outside the cache (planted links,
/// foreign directories) is the test's own, so writes are not checked here.
#[track_caller]
fn assert_not_run(env: &TestEnv, out: &Output, code: i32, names: &[&str]) {
    assert_refusal_message(out, code, names);
    assert_no_markers(&[&ran(env)]);
}

// ---------------------------------------------------------------------------
// Item 3: the cache is yours alone
// ---------------------------------------------------------------------------

/// Regression: a planted `v1/npm/env` symlink sent the unpacked tree to a
/// directory the planter chose (and ran it from there).
#[test]
fn planted_env_symlink_is_refused_not_followed() {
    let env = TestEnv::new();
    let reg = app_registry(&env);
    let elsewhere = env.root().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::create_dir_all(v1(&env).join("npm")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, v1(&env).join("npm/env")).unwrap();
    let out = reg.npx(&env, &["-y", "app@1.0.0"]);
    assert_not_run(
        &env,
        &out,
        7,
        &["v1/npm/env`", "symbolic link", "hint: remove it"],
    );
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "something was written through the link"
    );
    // The fix the hint gives works.
    std::fs::remove_file(v1(&env).join("npm/env")).unwrap();
    assert_ran(&reg.npx(&env, &["-y", "app@1.0.0"]), "app ran dep\n");
}

/// Every directory safex uses under the root, and the root itself: another
/// user's, or writable by group or others, is refused naming it and the fix.
#[test]
fn cache_dirs_of_another_user_or_writable_by_others_are_refused() {
    let subs = [
        "",
        "v1",
        "v1/tmp",
        "v1/blobs",
        "v1/blobs/sha512",
        "v1/npm/env",
        "v1/locks",
        "v1/lockindex",
    ];
    for sub in subs {
        for (mode, fix) in [(0o777, "chmod go-w"), (0o770, "chmod go-w")] {
            let env = TestEnv::new();
            let reg = app_registry(&env);
            let dir = sub_dir(&env, sub);
            std::fs::create_dir_all(&dir).unwrap();
            chmod(&dir, mode);
            let out = reg.npx(&env, &["-y", "app@1.0.0"]);
            let shown = format!("{}`", dir.display());
            assert_not_run(&env, &out, 7, &[&shown, "can be written by", fix]);
            chmod(&dir, 0o700);
            assert_ran(&reg.npx(&env, &["-y", "app@1.0.0"]), "app ran dep\n");
        }
    }
    need_root!("the another-user half of this test");
    for sub in subs {
        let env = TestEnv::new();
        let reg = app_registry(&env);
        let dir = sub_dir(&env, sub);
        std::fs::create_dir_all(&dir).unwrap();
        chmod(&dir, 0o700);
        chown(&dir, NOBODY);
        let out = reg.npx(&env, &["-y", "app@1.0.0"]);
        let shown = format!("{}`", dir.display());
        assert_not_run(&env, &out, 7, &[&shown, "owned by uid 65534", "not by you"]);
        assert!(reg.requests().is_empty(), "fetched before the check");
    }
}

fn sub_dir(env: &TestEnv, sub: &str) -> PathBuf {
    if sub.is_empty() {
        env.cache()
    } else {
        env.cache().join(sub)
    }
}

/// The warm path's one `lstat`: an environment another user could rewrite
/// is never run, whoever made it so.
#[test]
fn warm_env_another_user_could_rewrite_is_never_run() {
    let env = TestEnv::new();
    let reg = warmed_up(&env);
    let dir = the_env(&env);

    chmod(&dir, 0o777);
    let out = reg.npx(&env, &["-y", "app@1.0.0"]);
    assert_not_run(&env, &out, 7, &[&dir.display().to_string(), "chmod go-w"]);
    chmod(&dir, 0o700);
    assert_ran(&reg.npx(&env, &["-y", "app@1.0.0"]), "app ran dep\n");
    std::fs::remove_file(ran(&env)).unwrap();

    // The environment swapped for a symlink to a copy someone controls.
    let copy = env.root().join("copy");
    std::fs::rename(&dir, &copy).unwrap();
    std::os::unix::fs::symlink(&copy, &dir).unwrap();
    let out = reg.npx(&env, &["-y", "app@1.0.0"]);
    assert_not_run(&env, &out, 7, &["symbolic link"]);
    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(&copy, &dir).unwrap();

    need_root!("the another-user half of this test");
    chown(&dir, NOBODY);
    let out = reg.npx(&env, &["-y", "app@1.0.0"]);
    assert_not_run(&env, &out, 7, &["owned by uid 65534"]);
}

/// Directories safex creates are `0700` even under a umask that would give
/// the group write access (`002`, the default on many distributions), so
/// its own warm check never refuses its own cache.
#[test]
fn cache_dirs_are_created_private_whatever_the_umask() {
    let env = TestEnv::new();
    let reg = app_registry(&env);
    // A lockfile with another entry: the lock index is written before the
    // cache is opened for the cold path.
    let with_umask = |env: &TestEnv, args: &str| {
        let cmd = reg.safex(env);
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!("umask 002; exec \"$0\" \"$@\" {args}"))
            .arg(cmd.get_program())
            .args(cmd.get_args());
        sh.env_clear();
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                sh.env(k, v);
            }
        }
        sh.current_dir(env.work());
        run(&mut sh)
    };
    let launch = |env: &TestEnv| with_umask(env, "npx -y app@1.0.0");
    std::fs::remove_dir_all(env.cache()).unwrap();
    // `safex cache clean` of a cache that is not there makes its root (for
    // its lock file): private too.
    assert_code(&with_umask(&env, "cache clean"), 0);
    assert_ran(&launch(&env), "app ran dep\n");
    let mut dirs = vec![env.cache()];
    for sub in [
        "v1",
        "v1/tmp",
        "v1/locks",
        "v1/lockindex",
        "v1/blobs/sha512",
        "v1/npm/env",
    ] {
        dirs.push(env.cache().join(sub));
    }
    dirs.push(the_env(&env));
    for d in dirs {
        let mode = std::fs::symlink_metadata(&d).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is {mode:o}", d.display());
    }
    std::fs::remove_file(ran(&env)).unwrap();
    assert_ran(&launch(&env), "app ran dep\n");
}

/// The root the user points at may itself be a symlink (a symlinked
/// `~/.cache` is common): it is resolved once and its target is checked.
#[test]
fn symlinked_cache_root_is_followed_and_its_target_checked() {
    let env = TestEnv::new();
    let reg = app_registry(&env);
    let real = env.root().join("real-cache");
    std::fs::create_dir_all(&real).unwrap();
    chmod(&real, 0o700);
    let link = env.root().join("link-cache");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let npx = |env: &TestEnv| {
        run(reg
            .safex(env)
            .env("SAFEX_CACHE_DIR", &link)
            .args(["npx", "-y", "app@1.0.0"]))
    };
    assert_ran(&npx(&env), "app ran dep\n");
    assert!(real.join("v1/npm/env").is_dir());
    std::fs::remove_file(ran(&env)).unwrap();
    assert_ran(&npx(&env), "app ran dep\n");
    std::fs::remove_file(ran(&env)).unwrap();

    // Its target writable by all: refused, naming the target.
    std::fs::remove_dir_all(real.join("v1/npm")).unwrap();
    chmod(&real, 0o777);
    let out = npx(&env);
    assert_not_run(
        &env,
        &out,
        7,
        &[&format!("{}`", real.display()), "chmod go-w"],
    );
}

// ---------------------------------------------------------------------------
// Item 13: refusals leave nothing behind
// ---------------------------------------------------------------------------

/// A root with several big dependencies being fetched and unpacked in
/// parallel, and one that is refused: the failure cancels the rest, and
/// whatever was staged must go with it.
fn refused_tree(bad: Pkg) -> FixtureRegistry {
    let mut root = Pkg::program("refused-root", "1.0.0", "console.log('ran');");
    let mut b = FixtureRegistry::builder();
    for i in 0..6 {
        let name = format!("big-{i}");
        root = root.dep(&name, "1.0.0");
        b = b.package(
            Pkg::new(&name, "1.0.0")
                .entry(Entry::zeros("package/a.bin", 6 << 20))
                .entry(Entry::zeros("package/b.bin", 6 << 20)),
        );
    }
    root = root.dep(bad.name(), bad.version());
    b.package(root).package(bad).build()
}

#[test]
fn repeated_refused_launches_leave_tmp_empty() {
    let unsafe_dep = Pkg::new("bad-dep", "1.0.0").entry(Entry::symlink("package/x", "/etc/passwd"));
    let corrupt_dep = Pkg::new("bad-dep", "1.0.0").integrity(&sri_sha512(b"other bytes"));
    // A dependency the policy denies is refused as it is placed, while the
    // others are already downloading.
    let denied_dep = Pkg::new("bad-dep", "1.0.0").file("index.js", "");
    for (bad, code, deny) in [
        (unsafe_dep, 5, false),
        (corrupt_dep, 4, false),
        (denied_dep, 3, true),
    ] {
        let env = TestEnv::new();
        let reg = refused_tree(bad);
        if deny {
            let policy = env.home().join(".config/safex/policy.toml");
            std::fs::create_dir_all(policy.parent().unwrap()).unwrap();
            std::fs::write(&policy, "[packages]\ndeny = [\"bad-dep\"]\n").unwrap();
        }
        // Slow some big downloads (a second or so each) so that they are in
        // flight at the refusal: cancelled midway, they left `dl-*` files.
        for i in 0..3 {
            reg.fault_always(
                &tarball_path(&format!("big-{i}"), "1.0.0"),
                Fault::SlowBody {
                    chunk: 256,
                    delay: std::time::Duration::from_millis(10),
                },
            );
        }
        for attempt in 0..3 {
            let out = reg.npx(&env, &["-y", "refused-root@1.0.0"]);
            assert_code(&out, code);
            assert_eq!(
                tmp_entries(&env),
                Vec::<String>::new(),
                "attempt {attempt}: `v1/tmp` keeps debris\n{}",
                describe(&out)
            );
        }
    }
}

/// Staging of a process that is gone and older than a minute is swept on
/// the next cold path; a live process's staging, and a recent one, are not.
#[test]
fn stale_staging_of_dead_processes_is_swept_live_kept() {
    let env = TestEnv::new();
    let reg = app_registry(&env);
    let tmp = v1(&env).join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let dead = {
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    };
    let mut live = Command::new("sleep").arg("60").spawn().unwrap();
    // Ten minutes ago, in the nanoseconds the names carry.
    let old = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        - 600_000_000_000;
    let plant = |name: &str, age_old: bool| {
        let p = tmp.join(name);
        std::fs::create_dir_all(p.join("node_modules/x")).unwrap();
        std::fs::write(p.join("node_modules/x/index.js"), "x").unwrap();
        if age_old {
            for q in [p.join("node_modules/x"), p.join("node_modules"), p.clone()] {
                let ok = Command::new("touch")
                    .args(["-h", "-d", "@1000000000"])
                    .arg(&q)
                    .status()
                    .unwrap()
                    .success();
                assert!(ok, "touch {}", q.display());
            }
        }
        p
    };
    let dead_env = plant(&format!("env-{dead}-{old}-0"), true);
    let dead_dl = tmp.join(format!("dl-{dead}-{old}"));
    std::fs::write(&dead_dl, "partial").unwrap();
    Command::new("touch")
        .args(["-d", "@1000000000"])
        .arg(&dead_dl)
        .status()
        .unwrap();
    let live_env = plant(&format!("env-{}-{old}-0", live.id()), true);
    let now = old + 600_000_000_000;
    let recent_dead = plant(&format!("venv-{dead}-{now}-0"), false);
    let other = tmp.join("not-staging");
    std::fs::write(&other, "x").unwrap();

    assert_ran(&reg.npx(&env, &["-y", "app@1.0.0"]), "app ran dep\n");
    live.kill().unwrap();
    live.wait().unwrap();
    assert!(!dead_env.exists(), "a dead process's staging was kept");
    assert!(!dead_dl.exists(), "a dead process's download was kept");
    assert!(live_env.exists(), "a live process's staging was removed");
    assert!(
        recent_dead.exists(),
        "staging younger than a minute was removed"
    );
    assert!(other.exists(), "a file that is not staging was removed");
}

// ---------------------------------------------------------------------------
// Item 14: self-repair
// ---------------------------------------------------------------------------

/// Regression: an environment without its marker failed every launch with
/// exit 7 "Directory not empty"; with a damaged one, "damaged marker".
#[test]
fn environment_with_missing_or_damaged_marker_is_rebuilt() {
    for damage in ["delete", "garbage", "truncate", "other digest", "file"] {
        let env = TestEnv::new();
        let reg = warmed_up(&env);
        let dir = the_env(&env);
        let marker = dir.join(".safex-env.json");
        match damage {
            "delete" => std::fs::remove_file(&marker).unwrap(),
            "garbage" => std::fs::write(&marker, b"\x00\xffnot json").unwrap(),
            "truncate" => {
                let text = std::fs::read(&marker).unwrap();
                std::fs::write(&marker, &text[..text.len() / 2]).unwrap();
            }
            "other digest" => {
                let text = std::fs::read_to_string(&marker).unwrap();
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                let digest = v["digest"].as_str().unwrap().to_owned();
                std::fs::write(&marker, text.replace(&digest, &"0".repeat(64))).unwrap();
            }
            // What an unreadable directory looks like to root: something
            // that cannot be entered where the directory should be.
            "file" => {
                std::fs::remove_dir_all(&dir).unwrap();
                std::fs::write(&dir, "not a directory").unwrap();
            }
            _ => unreachable!(),
        }
        let out = reg.npx(&env, &["-y", "app@1.0.0"]);
        assert_ran(&out, "app ran dep\n");
        assert!(
            stderr(&out).contains("moved it aside and rebuilt it"),
            "{damage}: no note\n{}",
            describe(&out)
        );
        // Rebuilt from the cached, verified archives: nothing fetched.
        assert!(
            reg.requests().is_empty(),
            "{damage}: fetched {:?}",
            reg.request_lines()
        );
        assert!(dir.join(".safex-env.json").is_file(), "{damage}");
        assert_eq!(tmp_entries(&env), Vec::<String>::new(), "{damage}");
        // And the next launch is warm again, without a note.
        std::fs::remove_file(ran(&env)).unwrap();
        let out = reg.npx(&env, &["-y", "app@1.0.0"]);
        assert_ran(&out, "app ran dep\n");
        assert!(
            !stderr(&out).contains("rebuilt"),
            "{damage}: {}",
            stderr(&out)
        );
    }
}

/// Several launches find the same damaged environment at once: each
/// succeeds, one environment is left, and `tmp/` is empty afterwards.
#[test]
fn concurrent_launches_repair_one_damaged_environment() {
    let env = TestEnv::new();
    let reg = warmed_up(&env);
    let dir = the_env(&env);
    std::fs::remove_file(dir.join(".safex-env.json")).unwrap();
    let children: Vec<_> = (0..8)
        .map(|_| {
            reg.safex(&env)
                .args(["npx", "-y", "app@1.0.0"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_ran(&out, "app ran dep\n");
    }
    assert!(dir.join(".safex-env.json").is_file());
    the_env(&env);
    assert_eq!(tmp_entries(&env), Vec::<String>::new());
}

/// A truly unreadable environment (mode 000) for a user who is not root:
/// safex runs as uid 65534 with everything it uses owned by that user.
#[test]
fn unreadable_environment_is_rebuilt() {
    need_root!("running safex as uid 65534 (root reads a mode-000 directory)");
    let env = TestEnv::new();
    let reg = app_registry(&env);
    chmod(env.root(), 0o755);
    let owned_by_nobody = |env: &TestEnv| {
        let ok = Command::new("chown")
            .args(["-R", &format!("{NOBODY}:{NOBODY}")])
            .arg(env.root())
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown -R");
    };
    owned_by_nobody(&env);
    let npx = |env: &TestEnv| {
        use std::os::unix::process::CommandExt;
        let mut cmd = reg.safex(env);
        cmd.uid(NOBODY).gid(NOBODY).args(["npx", "-y", "app@1.0.0"]);
        run(&mut cmd)
    };
    // Can uid 65534 run the binary at all here (its path may be closed)?
    let probe = {
        use std::os::unix::process::CommandExt;
        env.safex()
            .uid(NOBODY)
            .gid(NOBODY)
            .arg("--version")
            .output()
    };
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: uid {NOBODY} cannot run the safex binary here ({probe:?}); not run");
        return;
    }
    assert_ran(&npx(&env), "app ran dep\n");
    std::fs::remove_file(ran(&env)).unwrap();
    let dir = the_env(&env);
    chmod(&dir, 0o000);
    let out = npx(&env);
    assert_ran(&out, "app ran dep\n");
    assert!(stderr(&out).contains("rebuilt"), "{}", describe(&out));
    assert_eq!(
        std::fs::metadata(&dir).unwrap().mode() & 0o777,
        0o700,
        "rebuilt environment"
    );
    assert_eq!(tmp_entries(&env), Vec::<String>::new());
}

/// A lockfile write killed between its temp file and the rename leaves
/// `.safex.lock.tmp-<pid>`: the next write (under the lockfile's lock)
/// removes it.
#[test]
fn temp_file_of_a_killed_lockfile_write_is_removed() {
    let env = TestEnv::new();
    let reg = app_registry(&env);
    let planted = env.root().join(".safex.lock.tmp-4194000");
    std::fs::write(&planted, "version = 1\n# half of a write\n").unwrap();
    assert_ran(&reg.npx(&env, &["-y", "app@1.0.0"]), "app ran dep\n");
    assert!(!planted.exists(), "the killed write's temp file was kept");
    assert!(read_lock(&env).contains("app@1.0.0"));
}

/// "Read-only" is what the mode says, even for root (who could write a
/// `0444` file): a root the lockfile lacks is refused as in `frozen` mode,
/// before anything is fetched, and the file is left exactly as it was;
/// roots it has still launch, warm or rebuilt.
#[test]
fn read_only_lockfile_is_never_replaced() {
    let env = TestEnv::new();
    let reg = warmed_up(&env);
    reg.publish(Pkg::program("other", "1.0.0", &js_touch(&ran(&env))));
    reg.clear_log();
    let lockfile = env.lockfile();
    chmod(&lockfile, 0o444);
    let before = std::fs::read(&lockfile).unwrap();
    let ino = std::fs::metadata(&lockfile).unwrap().ino();

    let out = reg.npx(&env, &["-y", "other@1.0.0"]);
    assert_not_run(
        &env,
        &out,
        3,
        &[
            &format!("{}`", lockfile.display()),
            "read-only (mode 0444)",
            "cannot record `other@1.0.0`",
            "chmod u+w",
        ],
    );
    assert!(
        reg.requests().is_empty(),
        "fetched {:?}",
        reg.request_lines()
    );
    let out = run(reg.safex(&env).args(["lock", "npx", "other@1.0.0"]));
    assert_code(&out, 3);
    let meta = std::fs::metadata(&lockfile).unwrap();
    assert_eq!(
        std::fs::read(&lockfile).unwrap(),
        before,
        "lockfile changed"
    );
    assert_eq!(meta.ino(), ino, "lockfile replaced");
    assert_eq!(meta.mode() & 0o777, 0o444);

    // What it lists still launches: warm, and rebuilt from the lock.
    assert_ran(&reg.npx(&env, &["-y", "app@1.0.0"]), "app ran dep\n");
    std::fs::remove_dir_all(v1(&env).join("npm")).unwrap();
    std::fs::remove_dir_all(v1(&env).join("lockindex")).unwrap();
    std::fs::remove_file(ran(&env)).unwrap();
    assert_ran(&reg.npx(&env, &["-y", "app@1.0.0"]), "app ran dep\n");
    assert_eq!(std::fs::read(&lockfile).unwrap(), before);

    // Immutable (`chattr +i`) is read-only too, whatever the mode says.
    std::fs::remove_file(ran(&env)).unwrap();
    chmod(&lockfile, 0o644);
    let immutable = Command::new("chattr")
        .arg("+i")
        .arg(&lockfile)
        .output()
        .is_ok_and(|o| o.status.success());
    if !immutable {
        eprintln!("SKIPPED: `chattr +i` is not available here; the immutable case was not run");
        return;
    }
    let out = reg.npx(&env, &["-y", "other@1.0.0"]);
    let _ = Command::new("chattr").arg("-i").arg(&lockfile).status();
    assert_not_run(
        &env,
        &out,
        3,
        &[
            "read-only (cannot open it for writing",
            "cannot record `other@1.0.0`",
        ],
    );
    assert_eq!(std::fs::read(&lockfile).unwrap(), before);
}

fn read_lock(env: &TestEnv) -> String {
    std::fs::read_to_string(env.lockfile()).unwrap()
}

// ---------------------------------------------------------------------------
// The same for PyPI: the venv is checked, healed and cleaned up alike
// ---------------------------------------------------------------------------

mod pypi {
    use super::*;
    use crate::support::pyfixture::*;

    fn py_env(env: &TestEnv) -> PathBuf {
        let dir = v1(env).join("pypi/env");
        let mut all: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(all.len(), 1, "venvs: {all:?}");
        all.pop().unwrap()
    }

    #[test]
    fn venv_with_missing_or_damaged_marker_is_rebuilt_and_a_foreign_one_never_run() {
        if python3().is_none() {
            eprintln!("SKIPPED: no python3 on PATH; not run");
            return;
        }
        let env = TestEnv::new();
        let idx = PyIndex::builder()
            .package(PyPkg::program("py-app", "1.0.0", "print('py ran')"))
            .build();
        assert_ran(&idx.uvx(&env, &["py-app==1.0.0"]), "py ran\n");
        let dir = py_env(&env);
        for damage in ["delete", "garbage"] {
            let marker = dir.join(".safex-env.json");
            match damage {
                "delete" => std::fs::remove_file(&marker).unwrap(),
                _ => std::fs::write(&marker, "{\"digest\": 3").unwrap(),
            }
            let out = idx.uvx(&env, &["py-app==1.0.0"]);
            assert_ran(&out, "py ran\n");
            assert!(
                stderr(&out).contains("moved it aside and rebuilt it"),
                "{damage}\n{}",
                describe(&out)
            );
            assert!(marker.is_file());
            assert_eq!(tmp_entries(&env), Vec::<String>::new(), "{damage}");
        }
        chmod(&dir, 0o775);
        let out = idx.uvx(&env, &["py-app==1.0.0"]);
        assert_code(&out, 7);
        assert!(out.stdout.is_empty(), "{}", describe(&out));
        assert!(stderr(&out).contains("chmod go-w"), "{}", describe(&out));
    }

    #[test]
    fn refused_pypi_launches_leave_tmp_empty() {
        if python3().is_none() {
            eprintln!("SKIPPED: no python3 on PATH; not run");
            return;
        }
        let env = TestEnv::new();
        let idx = PyIndex::builder()
            .package(PyPkg::program("py-root", "1.0.0", "print('ran')").dep("py-bad"))
            .package(PyPkg::library("py-bad", "1.0.0", "").record_wrong_hash("py_bad/__init__.py"))
            .build();
        for attempt in 0..3 {
            let out = idx.uvx(&env, &["py-root==1.0.0"]);
            assert_code(&out, 4);
            assert_eq!(
                tmp_entries(&env),
                Vec::<String>::new(),
                "attempt {attempt}\n{}",
                describe(&out)
            );
        }
    }
}
