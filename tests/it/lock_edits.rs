//! An edited lockfile (DESIGN §9 "an edited lockfile") and build metadata
//! in versions (`1.0.0+x` is not `1.0.0`): issue 11, items 4 and 5.
//!
//! Each hostile edit keeps every hash honest (the hostile version is a real
//! package of the fixture registry, recorded with its own correct hash), so
//! only the entry's agreement with itself and with its packages' declared
//! ranges can stop it. The hostile version leaves a marker when it runs.

use std::path::PathBuf;

use crate::support::env::TestEnv;
use crate::support::fixture::*;
use crate::support::pyfixture::{PyIndex, PyPkg, assert_py_refused, py_touch};

fn marker(env: &TestEnv) -> PathBuf {
    env.root().join("ran-hostile")
}

/// `app@1.0.0` requires `dep@^1.0.0` and prints what `dep` says; `dep@2.0.0`
/// (a real, correctly hashed version that `app` does not ask for) and
/// `app@1.0.1` are the hostile versions; `other@1.0.0` depends on
/// `dep@^2.0.0`, so that locking it puts the hostile tarball in the cache.
fn registry(env: &TestEnv) -> FixtureRegistry {
    let hostile = js_touch(&marker(env));
    FixtureRegistry::builder()
        .package(
            Pkg::program(
                "app",
                "1.0.0",
                "let s; try { s = require('supports-color'); } catch (e) {} \
                 if (s) console.log('probed'); console.log(require('dep'));",
            )
            .dep("dep", "^1.0.0"),
        )
        .package(Pkg::program("app", "1.0.1", &hostile))
        .package(Pkg::new("dep", "1.0.0").file("index.js", "module.exports = 'good';"))
        .package(
            Pkg::new("dep", "2.0.0")
                .file("index.js", format!("{hostile} module.exports = 'evil';")),
        )
        .package(
            Pkg::new("supports-color", "1.0.0")
                .file("index.js", format!("{hostile} module.exports = 1;")),
        )
        .package(Pkg::program("other", "1.0.0", "require('dep');").dep("dep", "^2.0.0"))
        .build()
}

fn lock(env: &TestEnv) -> toml::Table {
    toml::from_str(&std::fs::read_to_string(env.lockfile()).unwrap()).unwrap()
}

fn write_lock(env: &TestEnv, t: &toml::Table) {
    std::fs::write(env.lockfile(), toml::to_string(t).unwrap()).unwrap();
}

/// The `[[npm.package]]` tables of the entry keyed `root`.
fn packages<'a>(t: &'a mut toml::Table, root: &str) -> &'a mut Vec<toml::Value> {
    let entry = t["npm"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["roots"].as_array().unwrap()[0].as_str() == Some(root))
        .expect("entry");
    entry["package"].as_array_mut().unwrap()
}

fn package<'a>(t: &'a mut toml::Table, root: &str, path: &str) -> &'a mut toml::Table {
    packages(t, root)
        .iter_mut()
        .find(|p| p["path"].as_str() == Some(path))
        .expect("package")
        .as_table_mut()
        .unwrap()
}

/// Lock `app@1.0.0` (and `other@1.0.0`, whose tree puts `dep@2.0.0` in the
/// cache), check `app` runs the good `dep`, and return the registry.
fn locked(env: &TestEnv) -> FixtureRegistry {
    let reg = registry(env);
    assert_ran(&reg.npx(env, &["-y", "app@1.0.0"]), "good\n");
    assert_code(&run(reg.safex(env).args(["lock", "npx", "other@1.0.0"])), 0);
    assert!(!marker(env).exists(), "control: nothing hostile ran yet");
    reg
}

/// The launch modes an edited entry must be refused in: tofu (the default),
/// frozen, offline. The environment of the unedited entry is still in the
/// cache, as on a laptop where the lock is edited after the first launch.
fn assert_refused_in_every_mode(env: &TestEnv, reg: &FixtureRegistry, names: &[&str]) {
    let before = std::fs::read(env.lockfile()).unwrap();
    for mode in [
        &[][..],
        &[("SAFEX_LOCK_MODE", "frozen")],
        &[("SAFEX_OFFLINE", "1")],
    ] {
        let mut cmd = reg.safex(env);
        cmd.args(["npx", "-y", "app@1.0.0"]);
        for (k, v) in mode {
            cmd.env(k, v);
        }
        let out = run(&mut cmd);
        // The message points at the lockfile.
        let names: Vec<&str> = names.iter().copied().chain(["lockfile"]).collect();
        assert_refused(env, &out, 7, &names, &[&marker(env)], &[]);
        assert_eq!(
            std::fs::read(env.lockfile()).unwrap(),
            before,
            "{mode:?}: a refused entry is never rewritten"
        );
    }
}

#[test]
fn a_dependency_edited_to_another_real_version_is_refused() {
    let env = TestEnv::new();
    let reg = locked(&env);
    let evil = reg.integrity_of("dep", "2.0.0");
    let mut t = lock(&env);
    let dep = package(&mut t, "app@1.0.0", "node_modules/dep");
    dep.insert("version".into(), "2.0.0".into());
    dep.insert("integrity".into(), evil.into());
    package(&mut t, "app@1.0.0", "node_modules/app")["dependencies"]
        .as_table_mut()
        .unwrap()
        .insert("dep".into(), "2.0.0".into());
    write_lock(&env, &t);
    assert_refused_in_every_mode(&env, &reg, &["dep@2.0.0", "^1.0.0", "node_modules/app"]);
}

#[test]
fn a_root_edited_to_another_version_than_its_key_is_refused() {
    let env = TestEnv::new();
    let reg = locked(&env);
    let evil = reg.integrity_of("app", "1.0.1");
    let mut t = lock(&env);
    let app = package(&mut t, "app@1.0.0", "node_modules/app");
    app.insert("version".into(), "1.0.1".into());
    app.insert("integrity".into(), evil.into());
    app.remove("dependencies");
    packages(&mut t, "app@1.0.0").retain(|p| p["path"].as_str() == Some("node_modules/app"));
    write_lock(&env, &t);
    let line = std::fs::read_to_string(env.lockfile())
        .unwrap()
        .lines()
        .position(|l| l == "path = \"node_modules/app\"")
        .unwrap()
        + 1;
    let at = format!("safex.lock:{line}");
    assert_refused_in_every_mode(&env, &reg, &[&at, "app@1.0.1", "app@1.0.0"]);
}

#[test]
fn an_extra_nested_package_is_refused() {
    let env = TestEnv::new();
    let reg = locked(&env);
    let mut t = lock(&env);
    let extra: toml::Value = toml::from_str::<toml::Table>(&format!(
        "path = \"node_modules/app/node_modules/supports-color\"\nname = \"supports-color\"\nversion = \"1.0.0\"\nintegrity = \"{}\"\n",
        reg.integrity_of("supports-color", "1.0.0")
    ))
    .unwrap()
    .into();
    packages(&mut t, "app@1.0.0").push(extra);
    write_lock(&env, &t);
    assert_refused_in_every_mode(
        &env,
        &reg,
        &[
            "node_modules/app/node_modules/supports-color",
            "no root depends on",
        ],
    );

    // With an edge to it from `app`, it is reachable, but `app` does not
    // declare it: still refused, now by `app`'s own package.json. (The
    // tarball is fetched for that check, so this is not run offline.)
    package(&mut t, "app@1.0.0", "node_modules/app")["dependencies"]
        .as_table_mut()
        .unwrap()
        .insert("supports-color".into(), "1.0.0".into());
    write_lock(&env, &t);
    for mode in [&[][..], &[("SAFEX_LOCK_MODE", "frozen")]] {
        let mut cmd = reg.safex(&env);
        cmd.args(["npx", "-y", "app@1.0.0"]);
        for (k, v) in mode {
            cmd.env(k, v);
        }
        let out = run(&mut cmd);
        assert_refused(
            &env,
            &out,
            7,
            &[
                "supports-color@1.0.0",
                "does not declare",
                "node_modules/app",
            ],
            &[&marker(&env)],
            &[],
        );
    }
}

#[test]
fn a_weak_hash_in_the_lock_is_refused() {
    let env = TestEnv::new();
    let reg = locked(&env);
    let mut t = lock(&env);
    let sha1 = sha1_hex(&reg.tarball_bytes("dep", "1.0.0"));
    let bytes: Vec<u8> = (0..20)
        .map(|i| u8::from_str_radix(&sha1[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let sri = format!("sha1-{}", base64_encode(&bytes));
    package(&mut t, "app@1.0.0", "node_modules/dep").insert("integrity".into(), sri.into());
    write_lock(&env, &t);
    assert_refused_in_every_mode(&env, &reg, &["node_modules/dep", "sha1"]);
}

fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An unedited lock of a tree with a nested duplicate, an alias, a peer and
/// a skipped optional dependency launches from the lock again (frozen, with
/// the environment removed): the checks accept what safex writes.
#[test]
fn trees_safex_writes_launch_again_from_the_lock() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("tree", "1.0.0", "console.log(require('b'), require('al'));")
                .dep("a", "^1.0.0")
                .dep("b", "2.x || 3")
                .dep("al", "npm:b@^2.0.0")
                .dep("t", "latest")
                .peer_dep("p", "*")
                .optional_dep("native", "1.0.0"),
        )
        .package(Pkg::new("a", "1.0.0").dep("b", "~1.0.0"))
        .package(Pkg::new("b", "1.0.0").file("index.js", "module.exports = 1;"))
        .package(Pkg::new("b", "2.0.0").file("index.js", "module.exports = 2;"))
        .package(Pkg::new("t", "1.0.0-beta.1"))
        .dist_tag("t", "latest", "1.0.0-beta.1")
        .package(Pkg::new("p", "1.0.0"))
        .package(Pkg::new("native", "1.0.0").os(&["no-such-os"]))
        .build();
    assert_ran(&reg.npx(&env, &["-y", "tree@1.0.0"]), "2 2\n");
    let text = std::fs::read_to_string(env.lockfile()).unwrap();
    assert!(
        text.contains("path = \"node_modules/a/node_modules/b\"")
            && text.contains("name = \"b\"\n"),
        "the tree should have a nested duplicate and an alias\n{text}"
    );
    std::fs::remove_dir_all(env.cache()).unwrap();
    let mut cmd = reg.safex(&env);
    cmd.args(["npx", "-y", "tree@1.0.0"])
        .env("SAFEX_LOCK_MODE", "frozen");
    assert_ran(&run(&mut cmd), "2 2\n");
}

/// The same check on a freshly resolved tree: the registry's metadata says
/// `dep@^2.0.0`, the tarball's own package.json says `^1.0.0`. What was
/// resolved from the registry is not what the package asks for (manifest
/// confusion), so nothing is recorded and nothing runs.
#[test]
fn registry_dependencies_that_the_tarball_does_not_declare_are_refused() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("confused", "1.0.0", "console.log(require('dep'));")
                .dep("dep", "^1.0.0")
                .registry_field("dependencies", serde_json::json!({ "dep": "^2.0.0" })),
        )
        .package(Pkg::new("dep", "1.0.0").file("index.js", "module.exports = 'good';"))
        .package(Pkg::new("dep", "2.0.0").file(
            "index.js",
            format!("{} module.exports = 'evil';", js_touch(&marker(&env))),
        ))
        .build();
    let out = reg.npx(&env, &["-y", "confused@1.0.0"]);
    assert_refused(
        &env,
        &out,
        5,
        &["dep@2.0.0", "^1.0.0", "manifest confusion"],
        &[&marker(&env)],
        &[],
    );
    assert!(read_lock_text(&env).is_empty(), "nothing may be recorded");
}

// ---------------------------------------------------------------------------
// Build metadata: `1.0.0` is never `1.0.0+x` (item 5)
// ---------------------------------------------------------------------------

fn build_metadata_registry(env: &TestEnv, exact_also: bool) -> FixtureRegistry {
    let mut b = FixtureRegistry::builder()
        .package(
            Pkg::program("pinned", "1.0.0", "console.log(require('lib'));").dep("lib", "1.0.0"),
        )
        .package(
            Pkg::program("ranged", "1.0.0", "console.log(require('lib'));").dep("lib", "^1.0.0"),
        )
        .package(Pkg::new("lib", "1.0.0+evil").file(
            "index.js",
            format!("{} module.exports = 'evil';", js_touch(&marker(env))),
        ))
        .package(Pkg::new("lib", "1.0.1+evil").file(
            "index.js",
            format!("{} module.exports = 'evil';", js_touch(&marker(env))),
        ))
        .package(Pkg::program("solo", "1.0.0+evil", &js_touch(&marker(env))));
    if exact_also {
        b = b.package(Pkg::new("lib", "1.0.0").file("index.js", "module.exports = 'good';"));
    }
    b.build()
}

#[test]
fn an_exact_dependency_never_gets_a_build_metadata_version() {
    let env = TestEnv::new();
    let reg = build_metadata_registry(&env, true);
    // Listed beside `1.0.0` (and sorting after it), `1.0.0+evil` is not
    // picked for `1.0.0`, nor `1.0.1+evil` for `^1.0.0`.
    assert_ran(&reg.npx(&env, &["-y", "pinned@1.0.0"]), "good\n");
    assert_ran(&reg.npx(&env, &["-y", "ranged@1.0.0"]), "good\n");
    assert!(!read_lock_text(&env).contains("+evil"));
}

#[test]
fn a_build_metadata_version_alone_is_not_taken() {
    let env = TestEnv::new();
    let reg = build_metadata_registry(&env, false);
    let out = reg.npx(&env, &["-y", "pinned@1.0.0"]);
    assert_refused(
        &env,
        &out,
        6,
        &["lib", "1.0.0+evil", "build metadata"],
        &[&marker(&env)],
        &[],
    );
    let out = reg.npx(&env, &["-y", "solo@1.0.0"]);
    assert_refused(
        &env,
        &out,
        6,
        &["solo", "1.0.0+evil", "build metadata"],
        &[&marker(&env)],
        &[],
    );
}

fn read_lock_text(env: &TestEnv) -> String {
    std::fs::read_to_string(env.lockfile()).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// PyPI
// ---------------------------------------------------------------------------

fn py_marker(env: &TestEnv) -> PathBuf {
    marker(env)
}

fn py_index(env: &TestEnv, exact_also: bool) -> PyIndex {
    let evil = py_touch(&py_marker(env));
    let mut b = PyIndex::builder()
        .package(
            PyPkg::program("pyapp", "1.0.0", "import pylib; print(pylib.WHO)").dep("pylib==1.0.0"),
        )
        .package(PyPkg::library(
            "pylib",
            "1.0.0+evil",
            &format!("{evil}\nWHO = 'evil'\n"),
        ))
        .package(PyPkg::program("pysolo", "1.0.0+evil", &evil));
    if exact_also {
        b = b.package(PyPkg::library("pylib", "1.0.0", "WHO = 'good'\n"));
    }
    b.build()
}

#[test]
fn pypi_exact_pin_never_gets_a_local_version() {
    let env = TestEnv::new();
    let idx = py_index(&env, true);
    assert_ran(&idx.uvx(&env, &["pyapp==1.0.0"]), "good\n");
    assert!(!read_lock_text(&env).contains("+evil"));
}

#[test]
fn pypi_local_version_alone_is_not_taken_and_the_error_says_how_to_name_it() {
    let env = TestEnv::new();
    let idx = py_index(&env, false);
    let out = idx.uvx(&env, &["pyapp==1.0.0"]);
    assert_py_refused(
        &env,
        &out,
        6,
        &["pylib", "1.0.0+evil"],
        &[&py_marker(&env)],
        &[],
    );
    let out = idx.uvx(&env, &["pysolo==1.0.0"]);
    assert_py_refused(
        &env,
        &out,
        6,
        &["pysolo", "1.0.0+evil", "pysolo==1.0.0+evil"],
        &[&py_marker(&env)],
        &[],
    );
}

/// A local version named exactly is what the user asked for.
#[test]
fn pypi_local_version_named_exactly_is_taken() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(PyPkg::program("pycpu", "1.0.0+cpu", "print('cpu')"))
        .build();
    assert_ran(&idx.uvx(&env, &["pycpu==1.0.0+cpu"]), "cpu\n");
}

/// The `[[pypi.package]]` tables of the entry keyed `root`.
fn py_packages<'a>(t: &'a mut toml::Table, root: &str) -> &'a mut Vec<toml::Value> {
    let entry = t["pypi"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["roots"].as_array().unwrap()[0].as_str() == Some(root))
        .expect("entry");
    entry["package"].as_array_mut().unwrap()
}

/// `pyapp2==1.0.0` requires `pylib2>=1,<2`; `pyother==1.0.0` requires
/// `pylib2==2.0.0` (hostile), so locking it records that version's real
/// wheel and hash, ready to be pasted into `pyapp2`'s entry.
#[test]
fn pypi_dependency_edited_to_another_real_version_is_refused() {
    let env = TestEnv::new();
    let evil = py_touch(&py_marker(&env));
    let idx = PyIndex::builder()
        .package(
            PyPkg::program("pyapp2", "1.0.0", "import pylib2; print(pylib2.WHO)")
                .dep("pylib2>=1,<2"),
        )
        .package(PyPkg::library("pylib2", "1.0.0", "WHO = 'good'\n"))
        .package(PyPkg::library(
            "pylib2",
            "2.0.0",
            &format!("{evil}\nWHO = 'evil'\n"),
        ))
        .package(PyPkg::program("pyother", "1.0.0", "pass").dep("pylib2==2.0.0"))
        .build();
    assert_ran(&idx.uvx(&env, &["pyapp2==1.0.0"]), "good\n");
    assert_code(
        &run(idx.safex(&env).args(["lock", "uvx", "pyother==1.0.0"])),
        0,
    );
    assert!(
        !py_marker(&env).exists(),
        "control: nothing hostile ran yet"
    );

    let mut t = lock(&env);
    let hostile = py_packages(&mut t, "pyother==1.0.0")
        .iter()
        .find(|p| p["name"].as_str() == Some("pylib2"))
        .unwrap()
        .clone();
    for p in py_packages(&mut t, "pyapp2==1.0.0").iter_mut() {
        if p["name"].as_str() == Some("pylib2") {
            *p = hostile.clone();
        }
    }
    write_lock(&env, &t);
    let before = std::fs::read(env.lockfile()).unwrap();
    for mode in [
        &[][..],
        &[("SAFEX_LOCK_MODE", "frozen")],
        &[("SAFEX_OFFLINE", "1")],
    ] {
        let mut cmd = idx.safex(&env);
        cmd.args(["uvx", "pyapp2==1.0.0"]);
        for (k, v) in mode {
            cmd.env(k, v);
        }
        let out = run(&mut cmd);
        assert_py_refused(
            &env,
            &out,
            7,
            &["lockfile", "pylib2==2.0.0", "pyapp2", "<2"],
            &[&py_marker(&env)],
            &[],
        );
        assert_eq!(std::fs::read(env.lockfile()).unwrap(), before, "{mode:?}");
    }

    // The root itself edited to another version than its key, and an extra
    // package no edge reaches: refused when the lockfile is read.
    let mut t: toml::Table = toml::from_str(std::str::from_utf8(&before).unwrap()).unwrap();
    py_packages(&mut t, "pyapp2==1.0.0").push(
        toml::from_str::<toml::Table>(
            "name = \"sitecustomize-pkg\"\nversion = \"1.0\"\n[[wheel]]\nfile = \"sitecustomize_pkg-1.0-py3-none-any.whl\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n",
        )
        .unwrap()
        .into(),
    );
    write_lock(&env, &t);
    let out = idx.uvx(&env, &["pyapp2==1.0.0"]);
    assert_py_refused(
        &env,
        &out,
        7,
        &["sitecustomize-pkg", "no root depends on", "safex.lock:"],
        &[&py_marker(&env)],
        &[],
    );
}
