//! `safex cache verify`: check everything the cache holds, not only what a
//! lockfile names.
//!
//! - Every blob under `blobs/sha512` and `blobs/sha256` is re-hashed against
//!   its own file name (a planted or truncated file is found even when no
//!   lock names it) and removed when it does not match: the next launch
//!   downloads and verifies it again. Blobs are immutable and read through
//!   open handles, so removing one cannot break a launch in progress.
//! - Every environment is checked against the lock entry it was built from:
//!   its completion marker, and the files each locked package must have
//!   (npm: `package.json` with the locked name and version, each root's
//!   bins; PyPI: each package's `.dist-info`, the roots' console scripts).
//! - `--deep` re-reads every unpacked file: npm against the archive itself
//!   (re-hashed, then unpacked by the same unpacker into a private temp
//!   dir), PyPI against the installed wheel's `RECORD`.
//!
//! Nothing unreadable is skipped: it is reported as such, and counts as
//! damage. Environments are reported, not removed (a running program may
//! be using one); the output says what to do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cache::{Cache, ENV_MARKER, StagingGuard};
use crate::error::{Error, Result};
use crate::integrity::{Algo, Integrity};
use crate::lock::{LockFile, NpmEntry, PypiEntry};
use crate::npm::tree::EnvMarker;
use crate::settings::Settings;

/// What is wrong, and what to do about it.
struct Damage {
    what: String,
    fix: String,
}

#[derive(Default)]
struct Report {
    blobs_ok: usize,
    blobs_removed: usize,
    envs_ok: usize,
    /// Environments no lockfile entry names (left over after a lock change).
    envs_unlocked: usize,
    /// Archives `--deep` needed but the cache no longer holds.
    not_checked: Vec<String>,
    damage: Vec<Damage>,
}

impl Report {
    fn damaged(&mut self, what: String, fix: impl Into<String>) {
        self.damage.push(Damage {
            what,
            fix: fix.into(),
        });
    }
}

const FIX_ENV: &str = "remove that directory (or run `safex cache clean`); the next launch rebuilds it from verified archives";

pub fn run(settings: &Settings, cache: &Cache, deep: bool) -> Result<i32> {
    let mut npm = Vec::new();
    let mut pypi = Vec::new();
    let mut r = Report::default();
    for lf in std::iter::once(&settings.lockfile).chain(settings.system_lockfile.iter()) {
        let lock = LockFile::read(lf)?;
        npm.extend(lock.npm);
        pypi.extend(lock.pypi);
    }
    // hex → who it is, for messages (the lock's hashes are valid: typed when read).
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in npm.iter().flat_map(|e| &e.packages) {
        names
            .entry(p.integrity.strongest.hex())
            .or_default()
            .push(format!("{}@{}", p.name, p.version));
    }
    for p in pypi.iter().flat_map(|e| &e.packages) {
        for w in &p.wheels {
            names
                .entry(w.sha256.hex())
                .or_default()
                .push(w.file.clone());
        }
    }
    dedup_names(&mut names);

    verify_blobs(cache, &names, &mut r);
    verify_npm_envs(cache, &npm, deep, &settings.policy.limits, &mut r)?;
    verify_pypi_envs(cache, &pypi, deep, &mut r);

    for d in &r.damage {
        println!("damaged: {}\n  fix: {}", d.what, d.fix);
    }
    for n in &r.not_checked {
        println!("not checked: {n}");
    }
    println!(
        "{} archives verified, {} damaged and removed; {} environments verified{}; {} problems in all{}",
        r.blobs_ok,
        r.blobs_removed,
        r.envs_ok,
        if deep { " (deep)" } else { "" },
        r.damage.len(),
        if r.envs_unlocked > 0 {
            format!(
                "; {} environments no lockfile entry names (`safex cache clean` removes them)",
                r.envs_unlocked
            )
        } else {
            String::new()
        }
    );
    if r.damage.is_empty() {
        return Ok(0);
    }
    let first = r
        .damage
        .iter()
        .take(3)
        .map(|d| d.what.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Err(Error::integrity(format!(
        "the cache has {} damaged entries: {first}{}",
        r.damage.len(),
        if r.damage.len() > 3 { "; ..." } else { "" }
    ))
    .with_hint("each is listed above with what to do; damaged archives were removed, and the next launch downloads and verifies them again"))
}

fn dedup_names(names: &mut BTreeMap<String, Vec<String>>) {
    for v in names.values_mut() {
        v.sort();
        v.dedup();
    }
}

/// Every file under `blobs/<algo>/` against its own name.
fn verify_blobs(cache: &Cache, names: &BTreeMap<String, Vec<String>>, r: &mut Report) {
    for (dir_name, algo, hex_len) in [("sha512", Algo::Sha512, 128), ("sha256", Algo::Sha256, 64)] {
        let dir = cache.root().join("blobs").join(dir_name);
        let entries = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                r.damaged(
                    format!("`{}` cannot be read: {e}", dir.display()),
                    "make it readable by you, or run `safex cache clean`",
                );
                continue;
            }
        };
        for entry in entries {
            let path = match entry {
                Ok(e) => e.path(),
                Err(e) => {
                    r.damaged(
                        format!("an entry of `{}` cannot be read: {e}", dir.display()),
                        "run `safex cache clean`",
                    );
                    continue;
                }
            };
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let who = names
                .get(&name)
                .map(|n| format!(" (`{}`)", n.join("`, `")))
                .unwrap_or_default();
            let why = check_blob(&path, &name, algo, hex_len);
            match why {
                None => r.blobs_ok += 1,
                Some(why) => {
                    let removed = match std::fs::symlink_metadata(&path) {
                        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path),
                        _ => std::fs::remove_file(&path),
                    };
                    let (what, fix) = match removed {
                        Ok(()) => {
                            r.blobs_removed += 1;
                            (
                                format!("archive `{}`{who} {why}: removed", path.display()),
                                "nothing: the next launch that needs it downloads and verifies it again".to_owned(),
                            )
                        }
                        Err(e) => (
                            format!(
                                "archive `{}`{who} {why}, and cannot be removed: {e}",
                                path.display()
                            ),
                            "remove it by hand, or run `safex cache clean`".to_owned(),
                        ),
                    };
                    r.damaged(what, fix);
                }
            }
        }
    }
}

/// Why the blob at `path` is not the archive its name says, if it is not.
fn check_blob(path: &Path, name: &str, algo: Algo, hex_len: usize) -> Option<String> {
    if name.len() != hex_len || !name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Some("is not named by a hash".into());
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => {}
        Ok(_) => return Some("is not a regular file".into()),
        Err(e) => return Some(format!("cannot be read: {e}")),
    }
    let expected = match algo {
        Algo::Sha256 => Integrity::from_sha256_hex(name).ok()?,
        _ => Integrity::sha512(hex::decode(name).ok()?),
    };
    match hash_path(path, &expected) {
        Ok(true) => None,
        Ok(false) => Some("does not hash to its name".into()),
        Err(e) => Some(format!("cannot be read: {e}")),
    }
}

fn hash_path(path: &Path, expected: &Integrity) -> std::io::Result<bool> {
    let mut f = std::fs::File::open(path)?;
    let digest = crate::integrity::digest_reader(&mut f, expected.strongest.algo)?;
    Ok(digest == expected.strongest.bytes)
}

/// The directories of `v1/<eco>/env/`, or the reason they cannot be listed.
fn env_dirs(dir: &Path, r: &mut Report) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut out = Vec::new();
            for e in rd {
                match e {
                    Ok(e) => out.push(e.path()),
                    Err(e) => r.damaged(
                        format!("an entry of `{}` cannot be read: {e}", dir.display()),
                        "run `safex cache clean`",
                    ),
                }
            }
            out.sort();
            out
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            r.damaged(
                format!("`{}` cannot be read: {e}", dir.display()),
                "make it readable by you, or run `safex cache clean`",
            );
            Vec::new()
        }
    }
}

fn read_marker_bytes(env: &Path) -> std::result::Result<Vec<u8>, String> {
    std::fs::read(env.join(ENV_MARKER)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("has no completion marker `{ENV_MARKER}`")
        } else {
            format!("has a completion marker that cannot be read: {e}")
        }
    })
}

fn verify_npm_envs(
    cache: &Cache,
    entries: &[NpmEntry],
    deep: bool,
    limits: &crate::archive::Limits,
    r: &mut Report,
) -> Result<()> {
    let by_digest: BTreeMap<String, &NpmEntry> = entries.iter().map(|e| (e.digest(), e)).collect();
    for env in env_dirs(&cache.root().join("npm").join("env"), r) {
        let shown = format!("npm environment `{}`", env.display());
        let dir_name = env
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let marker = match read_marker_bytes(&env).and_then(|b| {
            serde_json::from_slice::<EnvMarker>(&b)
                .map_err(|_| "has a damaged completion marker".to_owned())
        }) {
            Ok(m) => m,
            Err(why) => {
                r.damaged(format!("{shown} {why}"), FIX_ENV);
                continue;
            }
        };
        if marker.digest != dir_name {
            r.damaged(
                format!(
                    "{shown} has a marker for another tree (`{}`)",
                    marker.digest
                ),
                FIX_ENV,
            );
            continue;
        }
        let Some(entry) = by_digest.get(&dir_name) else {
            r.envs_unlocked += 1;
            continue;
        };
        let mut problems = Vec::new();
        for p in &entry.packages {
            if crate::npm::tree::check_tree_path(&p.path).is_err() {
                problems.push(format!("the lock path `{}` is not valid", p.path));
                continue;
            }
            let manifest = env.join(&p.path).join("package.json");
            match std::fs::read(&manifest) {
                Ok(b) => {
                    let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
                    if v["name"] != p.name.as_str() || v["version"] != p.version.as_str() {
                        problems.push(format!(
                            "`{}/package.json` is not `{}@{}`",
                            p.path, p.name, p.version
                        ));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    problems.push(format!("`{}/package.json` is missing", p.path))
                }
                Err(e) => problems.push(format!("`{}/package.json` cannot be read: {e}", p.path)),
            }
        }
        for root in &marker.roots {
            for (bin, rel) in &root.bins {
                let path = env.join(&root.path).join(rel);
                if !path.is_file() {
                    problems.push(format!(
                        "the bin `{bin}` (`{}/{rel}`) is missing",
                        root.path
                    ));
                }
            }
        }
        if deep && problems.is_empty() {
            for p in &entry.packages {
                deep_npm_package(cache, &env, p, limits, &mut problems, &mut r.not_checked)?;
            }
        }
        if problems.is_empty() {
            r.envs_ok += 1;
        } else {
            r.damaged(format!("{shown}: {}", problems.join("; ")), FIX_ENV);
        }
    }
    Ok(())
}

/// Unpack the package's archive (re-hashed first) into a private temp dir
/// with the unpacker that built the tree, and compare every file.
fn deep_npm_package(
    cache: &Cache,
    env: &Path,
    p: &crate::lock::LockedPackage,
    limits: &crate::archive::Limits,
    problems: &mut Vec<String>,
    not_checked: &mut Vec<String>,
) -> Result<()> {
    let label = format!("{}@{}", p.name, p.version);
    let Some(blob) = cache
        .blob_path(&p.integrity)
        .map(|b| (b, p.integrity.clone()))
    else {
        not_checked.push(format!(
            "`{label}` in `{}`: the lock has no sha512 for it",
            env.display()
        ));
        return Ok(());
    };
    let (blob, expected) = blob;
    match hash_path(&blob, &expected) {
        Ok(true) => {}
        Ok(false) => {
            problems.push(format!(
                "the archive of `{label}` does not match the lock, so its files cannot be checked"
            ));
            return Ok(());
        }
        Err(_) => {
            not_checked.push(format!(
                "`{label}` in `{}`: its archive is not in the cache (launch it once to fetch it, then verify again)",
                env.display()
            ));
            return Ok(());
        }
    }
    let staging = cache.staging_dir("verify")?;
    let _guard = StagingGuard(Some(staging.clone()));
    if let Err(e) = crate::archive::tar::unpack_npm(&blob, &staging, &label, limits) {
        problems.push(format!(
            "the archive of `{label}` cannot be unpacked to compare: {}",
            e.message
        ));
        return Ok(());
    }
    // What the installer removes (undeclared bundled `node_modules`) is
    // removed here too, by the same inspection; a refusal is damage.
    if let Err(e) = crate::npm::inspect::npm_package(&staging, p.name.as_str(), &p.version) {
        problems.push(format!(
            "the archive of `{label}` no longer passes inspection: {}",
            e.message
        ));
        return Ok(());
    }
    let installed = env.join(&p.path);
    for rel in files_under(&staging) {
        let want = file_sha256(&staging.join(&rel));
        let have = file_sha256(&installed.join(&rel));
        match (want, have) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(_), Ok(_)) => problems.push(format!(
                "`{}/{}` differs from its archive",
                p.path,
                rel.display()
            )),
            (Ok(_), Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                problems.push(format!("`{}/{}` is missing", p.path, rel.display()))
            }
            (Ok(_), Err(e)) => problems.push(format!(
                "`{}/{}` cannot be read: {e}",
                p.path,
                rel.display()
            )),
            (Err(e), _) => {
                return Err(Error::io(format!(
                    "cannot read `{}`: {e}",
                    staging.join(&rel).display()
                )));
            }
        }
    }
    Ok(())
}

/// Regular files under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(base, &p, out),
                Ok(t) if t.is_file() => {
                    if let Ok(rel) = p.strip_prefix(base) {
                        out.push(rel.to_owned());
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn file_sha256(path: &Path) -> std::io::Result<Vec<u8>> {
    crate::integrity::digest_reader(&mut std::fs::File::open(path)?, Algo::Sha256)
}

fn verify_pypi_envs(cache: &Cache, entries: &[PypiEntry], deep: bool, r: &mut Report) {
    let by_digest: BTreeMap<String, &PypiEntry> = entries.iter().map(|e| (e.digest(), e)).collect();
    for env in env_dirs(&cache.root().join("pypi").join("env"), r) {
        let shown = format!("PyPI environment `{}`", env.display());
        let marker = match read_marker_bytes(&env).and_then(|b| {
            serde_json::from_slice::<crate::pypi::pipeline::VenvMarker>(&b)
                .map_err(|_| "has a damaged completion marker".to_owned())
        }) {
            Ok(m) => m,
            Err(why) => {
                r.damaged(format!("{shown} {why}"), FIX_ENV);
                continue;
            }
        };
        let Some(entry) = by_digest.get(&marker.digest) else {
            r.envs_unlocked += 1;
            continue;
        };
        let mut problems = Vec::new();
        let site = match site_packages(&env) {
            Ok(s) => s,
            Err(why) => {
                r.damaged(format!("{shown} {why}"), FIX_ENV);
                continue;
            }
        };
        let dist_infos = match std::fs::read_dir(&site) {
            Ok(rd) => rd
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .filter(|n| n.ends_with(".dist-info"))
                .collect::<Vec<_>>(),
            Err(e) => {
                r.damaged(
                    format!("{shown}: `{}` cannot be read: {e}", site.display()),
                    FIX_ENV,
                );
                continue;
            }
        };
        let mut found = Vec::new();
        for p in &entry.packages {
            match dist_infos
                .iter()
                .find(|d| dist_info_is(d, p.name.as_ref(), p.version.as_str()))
            {
                Some(d) => found.push(d.clone()),
                None => problems.push(format!(
                    "`{}=={}` has no `.dist-info` in site-packages",
                    p.name, p.version
                )),
            }
        }
        let bin = env.join(crate::pypi::venv::bin_dir());
        if std::fs::symlink_metadata(bin.join(crate::pypi::venv::python_name())).is_err() {
            problems.push(format!("`{}` is missing", crate::pypi::venv::python_name()));
        }
        for script in marker.scripts.values().flatten() {
            if !bin.join(script).is_file() && !bin.join(format!("{script}.exe")).is_file() {
                problems.push(format!("the console script `{script}` is missing"));
            }
        }
        if deep && problems.is_empty() {
            for d in &found {
                deep_record(&env, &site, d, &mut problems);
            }
        }
        if problems.is_empty() {
            r.envs_ok += 1;
        } else {
            r.damaged(format!("{shown}: {}", problems.join("; ")), FIX_ENV);
        }
    }
}

fn site_packages(env: &Path) -> std::result::Result<PathBuf, String> {
    let win = env.join("Lib").join("site-packages");
    if win.is_dir() {
        return Ok(win);
    }
    let lib = env.join("lib");
    let rd = std::fs::read_dir(&lib).map_err(|e| format!("has no readable `lib`: {e}"))?;
    rd.flatten()
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
        .ok_or_else(|| "has no `site-packages`".to_owned())
}

/// Is `dir` (`name-version.dist-info`) the one of `name==version`?
fn dist_info_is(dir: &str, name: &str, version: &str) -> bool {
    use std::str::FromStr;
    let Some(stem) = dir.strip_suffix(".dist-info") else {
        return false;
    };
    let Some((n, v)) = stem.split_once('-') else {
        return false;
    };
    let same_version = match (
        pep440_rs::Version::from_str(v),
        pep440_rs::Version::from_str(version),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => v == version,
    };
    crate::pypi::tags::normalize(n) == crate::pypi::tags::normalize(name) && same_version
}

/// Every file the wheel's `RECORD` lists that lands in site-packages (the
/// root and `.data/purelib|platlib`), against its hash; scripts (their
/// shebang is rewritten) and data/headers, present.
fn deep_record(env: &Path, site: &Path, dist_info: &str, problems: &mut Vec<String>) {
    let record_path = site.join(dist_info).join("RECORD");
    let bytes = match std::fs::read(&record_path) {
        Ok(b) => b,
        Err(e) => {
            problems.push(format!("`{dist_info}/RECORD` cannot be read: {e}"));
            return;
        }
    };
    let rows = match crate::pypi::record::record_rows(&bytes, dist_info) {
        Ok(rows) => rows,
        Err(e) => {
            problems.push(format!("`{dist_info}/RECORD` {e}"));
            return;
        }
    };
    let data = format!("{}.data/", dist_info.trim_end_matches(".dist-info"));
    for (path, hash, _) in rows {
        let Some(hash) = hash else { continue };
        let (file, hashed) = match path.strip_prefix(&data) {
            Some(rest) => match rest.split_once('/') {
                Some(("purelib" | "platlib", rel)) => (site.join(rel), true),
                Some(("scripts", rel)) => (env.join(crate::pypi::venv::bin_dir()).join(rel), false),
                Some(("data", rel)) => (env.join(rel), true),
                // Headers go under `include/site/pythonX.Y/<dist>/`.
                _ => continue,
            },
            None => (site.join(&path), true),
        };
        match std::fs::read(&file) {
            Ok(b) if !hashed => drop(b),
            Ok(b) => {
                use sha2::Digest;
                let got: [u8; 32] = sha2::Sha256::digest(&b).into();
                let stripped =
                    path.ends_with(".pth") && crate::pypi::startup_hooks::is_stripped_pth(&b);
                if got != hash && !stripped {
                    problems.push(format!(
                        "`{}` differs from its `RECORD`",
                        display(site, &file)
                    ));
                }
            }
            // An executable-only `.pth` is not installed at all.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && path.ends_with(".pth") => {}
            // A start-up hook or a module shadow in `bin/` is left out on install.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && crate::pypi::startup_hooks::left_out_by_design(&path, dist_info) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                problems.push(format!("`{}` is missing", display(site, &file)))
            }
            Err(e) => problems.push(format!("`{}` cannot be read: {e}", display(site, &file))),
        }
    }
}

fn display(site: &Path, file: &Path) -> String {
    file.strip_prefix(site)
        .unwrap_or(file)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn dist_info_names() {
        assert!(super::dist_info_is(
            "foo_bar-1.0.dist-info",
            "Foo-Bar",
            "1.0"
        ));
        assert!(super::dist_info_is(
            "foo_bar-1.0.dist-info",
            "foo.bar",
            "1.0.0"
        ));
        assert!(!super::dist_info_is("foo_bar-1.0.dist-info", "foo", "1.0"));
        assert!(!super::dist_info_is("foo-1.1.dist-info", "foo", "1.0"));
    }
}
