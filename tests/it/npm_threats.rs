//! One test per npm threat class of DESIGN §9, each running the real binary
//! against the in-process fixture registry.
//!
//! Payloads are harmless but observable: install-time code and programs that
//! must not run create a marker file inside the test's temp root, and archive
//! escapes aim at paths inside that root, so "it did not happen" is checked
//! by looking (`assert_no_markers`, `written_outside_cache`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::env::{TestEnv, stderr};
use crate::support::fixture::*;
use crate::support::snapshot::stable_stderr;
use insta::assert_snapshot;

/// A file that exists only if code the test forbids has run.
fn marker(env: &TestEnv, what: &str) -> PathBuf {
    env.root().join(format!("ran-{what}"))
}

/// A program that must never be launched: it leaves a marker if it is.
fn forbidden_program(env: &TestEnv, name: &str) -> Pkg {
    Pkg::program(name, "1.0.0", &js_touch(&marker(env, "program")))
}

/// Launch `spec` and check it was refused with `code`, naming `names`, with
/// neither the program nor install code having run and nothing written
/// outside the cache (other than `created`).
#[track_caller]
fn assert_launch_refused(
    env: &TestEnv,
    reg: &FixtureRegistry,
    spec: &str,
    code: i32,
    names: &[&str],
    created: &[&Path],
) {
    let out = reg.npx(env, &["-y", spec]);
    let program = marker(env, "program");
    let install = marker(env, "install");
    assert_refused(env, &out, code, names, &[&program, &install], created);
}

// ---------------------------------------------------------------------------
// Controls: the payloads do leave their markers when they run, so their
// absence elsewhere means something
// ---------------------------------------------------------------------------

#[test]
fn control_touch_script_leaves_its_marker_when_run() {
    let env = TestEnv::new();
    let ran = marker(&env, "install");
    let status = Command::new("sh")
        .arg("-c")
        .arg(touch_script(&ran))
        .status()
        .unwrap();
    assert!(status.success() && ran.exists());
}

#[test]
fn control_forbidden_program_leaves_its_marker_when_launched() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden_program(&env, "harmless"))
        .build();
    let out = reg.npx(&env, &["-y", "harmless@1.0.0"]);
    assert_code(&out, 0);
    assert!(marker(&env, "program").exists(), "{}", describe(&out));
}

// ---------------------------------------------------------------------------
// Install-time code: lifecycle scripts and binding.gyp, root and dependency
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum InstallCode {
    Script(&'static str),
    BindingGyp,
}

/// A package carrying `code` that would create the `install` marker, then
/// the launch: the program runs, the code does not, and stderr says so.
fn install_code_never_runs(code: InstallCode, in_dependency: bool) {
    let env = TestEnv::new();
    let ran = marker(&env, "install");
    let arm = |p: Pkg| match code {
        InstallCode::Script(hook) => p.script(hook, &touch_script(&ran)),
        // gyp evaluates `<!(...)` command expansions while configuring, so a
        // build that so much as starts leaves the marker.
        InstallCode::BindingGyp => p.binding_gyp(&format!(
            "{{ 'variables': {{ 'x': '<!({})' }}, 'targets': [] }}",
            touch_script(&ran).replace('\'', "\\'")
        )),
    };
    let word = match code {
        InstallCode::Script(hook) => hook,
        InstallCode::BindingGyp => "binding.gyp",
    };
    let (reg, hooked, expected) = if in_dependency {
        let reg = FixtureRegistry::builder()
            .package(
                Pkg::program("hook-root", "1.0.0", "console.log(require('hook-dep'));")
                    .dep("hook-dep", "^1.0.0"),
            )
            .package(arm(
                Pkg::new("hook-dep", "1.0.3").file("index.js", "module.exports = 'dep loaded';")
            ))
            .build();
        (reg, "hook-dep", "dep loaded\n")
    } else {
        let reg = FixtureRegistry::builder()
            .package(arm(Pkg::program(
                "hook-root",
                "1.0.0",
                "console.log('root ran');",
            )))
            .build();
        (reg, "hook-root", "root ran\n")
    };

    let out = reg.npx(&env, &["-y", "hook-root@1.0.0"]);
    assert_ran(&out, expected);
    if word == "prepare" {
        // npm runs `prepare` only for git and directory sources, never for
        // a registry tarball: nothing was left out, so nothing is said.
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("prepare"),
            "{}",
            describe(&out)
        );
    } else {
        assert_warning(&out, &[hooked, word]);
    }
    assert_no_markers(&[&ran]);
    assert_nothing_written_outside_cache(&env, &[]);
    // Said by the launch that built the tree, not by every warm launch.
    let out = reg.npx(&env, &["-y", "hook-root@1.0.0"]);
    assert_ran(&out, expected);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning:"),
        "a warm launch repeated a warning\n{}",
        describe(&out)
    );
    assert_no_markers(&[&ran]);
}

#[test]
fn preinstall_in_root_never_runs() {
    install_code_never_runs(InstallCode::Script("preinstall"), false);
}
#[test]
fn install_in_root_never_runs() {
    install_code_never_runs(InstallCode::Script("install"), false);
}
#[test]
fn postinstall_in_root_never_runs() {
    install_code_never_runs(InstallCode::Script("postinstall"), false);
}
#[test]
fn prepare_in_root_never_runs() {
    install_code_never_runs(InstallCode::Script("prepare"), false);
}
#[test]
fn preinstall_in_dependency_never_runs() {
    install_code_never_runs(InstallCode::Script("preinstall"), true);
}
#[test]
fn install_in_dependency_never_runs() {
    install_code_never_runs(InstallCode::Script("install"), true);
}
#[test]
fn postinstall_in_dependency_never_runs() {
    install_code_never_runs(InstallCode::Script("postinstall"), true);
}
#[test]
fn prepare_in_dependency_never_runs() {
    install_code_never_runs(InstallCode::Script("prepare"), true);
}
#[test]
fn binding_gyp_in_root_is_never_built() {
    install_code_never_runs(InstallCode::BindingGyp, false);
}
#[test]
fn binding_gyp_in_dependency_is_never_built() {
    install_code_never_runs(InstallCode::BindingGyp, true);
}

// ---------------------------------------------------------------------------
// Manifest confusion: the registry's metadata and the tarball disagree
// ---------------------------------------------------------------------------

/// The registry's copy says "no scripts"; the tarball has a `postinstall`.
/// Judged by the tarball: warned about, not run.
#[test]
fn manifest_confusion_scripts_hidden_from_registry_are_judged_by_tarball() {
    let env = TestEnv::new();
    let ran = marker(&env, "install");
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("confused", "1.0.0", "console.log('ok');")
                .script("postinstall", &touch_script(&ran))
                .registry_remove("scripts"),
        )
        .build();
    let out = reg.npx(&env, &["-y", "confused@1.0.0"]);
    assert_ran(&out, "ok\n");
    assert_warning(&out, &["confused", "postinstall"]);
    assert_no_markers(&[&ran]);
    assert_nothing_written_outside_cache(&env, &[]);
}

#[test]
fn manifest_confusion_tarball_version_differs_is_refused() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden_program(&env, "twofaced").tarball_field("version", "6.6.6"))
        .build();
    assert_launch_refused(&env, &reg, "twofaced@1.0.0", 5, &["twofaced"], &[]);
}

#[test]
fn manifest_confusion_tarball_name_differs_is_refused() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden_program(&env, "twofaced").tarball_field("name", "someone-else"))
        .build();
    assert_launch_refused(&env, &reg, "twofaced@1.0.0", 5, &["twofaced"], &[]);
}

/// Same, in a dependency: every package of the tree is checked, not the root.
#[test]
fn manifest_confusion_in_dependency_is_refused() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden_program(&env, "honest-root").dep("twofaced-dep", "1.0.0"))
        .package(Pkg::new("twofaced-dep", "1.0.0").tarball_field("version", "1.0.1"))
        .build();
    assert_launch_refused(&env, &reg, "honest-root@1.0.0", 5, &["twofaced-dep"], &[]);
}

// ---------------------------------------------------------------------------
// Unsafe archives: escapes, links, devices, duplicates, bombs
// ---------------------------------------------------------------------------

/// A package whose tarball also holds `entries`: refused with exit 5, naming
/// it, before anything runs or lands outside the cache.
fn unsafe_archive_is_refused(env: &TestEnv, entries: Vec<Entry>, created: &[&Path]) {
    let mut pkg = forbidden_program(env, "sneaky-archive");
    for e in entries {
        pkg = pkg.entry(e);
    }
    let reg = FixtureRegistry::builder().package(pkg).build();
    assert_launch_refused(
        env,
        &reg,
        "sneaky-archive@1.0.0",
        5,
        &["sneaky-archive"],
        created,
    );
}

/// `path` as a tar path that climbs from `package/` up to `/` and back down:
/// where a naive unpacker writes it is exactly `path`.
fn climbing_to(path: &Path) -> String {
    let rel = path.to_str().unwrap().trim_start_matches('/');
    format!("package/{}{rel}", "../".repeat(24))
}

#[test]
fn archive_parent_traversal_is_refused() {
    let env = TestEnv::new();
    unsafe_archive_is_refused(&env, vec![Entry::file("package/../escaped", "x")], &[]);
}

#[test]
fn archive_traversal_to_an_absolute_location_is_refused() {
    let env = TestEnv::new();
    let target = env.root().join("escaped-by-traversal");
    unsafe_archive_is_refused(&env, vec![Entry::file(&climbing_to(&target), "x")], &[]);
    assert!(!target.exists());
}

#[test]
fn archive_absolute_path_is_refused() {
    let env = TestEnv::new();
    let target = env.root().join("escaped-absolute");
    unsafe_archive_is_refused(&env, vec![Entry::file(target.to_str().unwrap(), "x")], &[]);
    assert!(!target.exists());
}

#[test]
fn archive_entry_outside_the_package_directory_is_refused() {
    let env = TestEnv::new();
    // npm strips the first component whatever it is; `..` there is refused
    // all the same (no real package has one), as is an absolute name.
    unsafe_archive_is_refused(&env, vec![Entry::file("../escaped", "x")], &[]);
    let env = TestEnv::new();
    let abs = env.root().join("escaped-abs");
    let abs = abs.to_str().unwrap();
    unsafe_archive_is_refused(&env, vec![Entry::file(abs, "x")], &[]);
}

/// Every `@types/*` tarball keeps its files under the package's own name
/// (`node/`, `node v17.0/`), others under `name-v1.2.3/`: npm strips the
/// first folder whatever it is, and so does safex.
#[test]
fn archive_with_another_top_folder_launches() {
    for top in ["node", "node v17.0", "ejs-v6.0.1"] {
        let env = TestEnv::new();
        let reg = FixtureRegistry::builder()
            .package(Pkg::program("typed", "1.0.0", "console.log('typed ran');").top_folder(top))
            .build();
        assert_ran(&reg.npx(&env, &["-y", "typed@1.0.0"]), "typed ran\n");
    }
}

/// `socks-proxy-agent@8.0.5` repeats regular files: tar is read in order and
/// the later entry wins, in every tar reader and under npm.
#[test]
fn archive_repeated_file_the_later_wins() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("twice", "1.0.0", "console.log('first');").entry(Entry::file(
                "package/cli.js",
                "#!/usr/bin/env node\nconsole.log('second');\n",
            )),
        )
        .build();
    assert_ran(&reg.npx(&env, &["-y", "twice@1.0.0"]), "second\n");
}

/// A file and a directory of one name: which one wins depends on the tool.
#[test]
fn archive_file_and_directory_of_one_name_is_refused() {
    let env = TestEnv::new();
    unsafe_archive_is_refused(
        &env,
        vec![
            Entry::file("package/lib", "x"),
            Entry::file("package/lib/index.js", "y"),
        ],
        &[],
    );
}

/// The node-tar family: a symlink out of the package, then a file through it.
#[test]
fn archive_symlink_escape_is_refused() {
    let env = TestEnv::new();
    let outside = env.root().to_str().unwrap().to_string();
    let entries = vec![
        Entry::symlink("package/link", &outside),
        Entry::file("package/link/escaped-through-symlink", "x"),
    ];
    unsafe_archive_is_refused(&env, entries, &[]);
}

/// Links are refused outright, not judged by where they point.
#[test]
fn archive_symlink_inside_the_package_is_refused() {
    let env = TestEnv::new();
    unsafe_archive_is_refused(
        &env,
        vec![Entry::symlink("package/alias.js", "cli.js")],
        &[],
    );
}

#[test]
fn archive_hardlink_is_refused() {
    let env = TestEnv::new();
    let secret = env.root().join("secret.txt");
    std::fs::write(&secret, "secret").unwrap();
    let entries = vec![Entry::hardlink("package/stolen", secret.to_str().unwrap())];
    unsafe_archive_is_refused(&env, entries, &[&secret]);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret");
}

#[test]
fn archive_device_is_refused() {
    let env = TestEnv::new();
    unsafe_archive_is_refused(&env, vec![Entry::char_device("package/null", 1, 3)], &[]);
}

/// A FIFO in a tarball: npm's node-tar skips it as unsupported; safex
/// refuses the archive, as it refuses devices.
#[test]
fn archive_fifo_is_refused() {
    let env = TestEnv::new();
    unsafe_archive_is_refused(&env, vec![Entry::fifo("package/pipe")], &[]);
}

/// A directory entry for a path the archive already wrote as a file.
#[test]
fn archive_duplicate_directory_entry_over_a_file_is_refused() {
    let env = TestEnv::new();
    unsafe_archive_is_refused(&env, vec![Entry::dir("package/cli.js/")], &[]);
}

/// 2 GiB of zeros, about 2 MiB on the wire: over every size limit and ratio.
#[test]
fn decompression_bomb_is_refused() {
    let env = TestEnv::new();
    unsafe_archive_is_refused(&env, vec![Entry::zeros("package/zeros.bin", 2 << 30)], &[]);
    let kept = dir_size(&env.cache());
    assert!(
        kept < 64 << 20,
        "a refused bomb left {kept} bytes in the cache"
    );
}

/// Many empty files: the entry-count limit.
#[test]
fn entry_count_bomb_is_refused() {
    let env = TestEnv::new();
    let entries = (0..150_000)
        .map(|i| Entry::file(&format!("package/f/{i}"), ""))
        .collect();
    unsafe_archive_is_refused(&env, entries, &[]);
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

// ---------------------------------------------------------------------------
// `bin` escaping the package
// ---------------------------------------------------------------------------

#[test]
fn bin_target_outside_the_package_is_refused() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden_program(&env, "bin-escape").bin("bin-escape", "../../../outside.js"))
        .build();
    assert_launch_refused(&env, &reg, "bin-escape@1.0.0", 5, &["bin-escape"], &[]);
}

#[test]
fn bin_target_absolute_is_refused() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden_program(&env, "bin-escape").bin("bin-escape", "/bin/sh"))
        .build();
    assert_launch_refused(&env, &reg, "bin-escape@1.0.0", 5, &["bin-escape"], &[]);
}

/// npm cuts a bin name to its base name (`../../x` is `x`); safex creates no
/// links at all, so the name only selects what runs, and nothing lands
/// outside the cache.
#[test]
fn bin_name_climbing_out_creates_nothing_outside() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::new("bin-climb", "1.0.0")
                .bin("../../../x", "cli.js")
                .file("cli.js", "console.log('climbed nowhere');"),
        )
        .build();
    assert_ran(
        &reg.npx(&env, &["-y", "bin-climb@1.0.0"]),
        "climbed nowhere\n",
    );
    let out = reg.npx(&env, &["-y", "-p", "bin-climb@1.0.0", "x"]);
    assert_ran(&out, "climbed nowhere\n");
    assert_nothing_written_outside_cache(&env, &[]);
}

/// `mcp-handler@1.1.0` declares the bin `@vercel/mcp-adapter`, which npm
/// installs as `mcp-adapter`.
#[test]
fn scoped_bin_name_is_its_base_name() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::new("handler", "1.0.0")
                .bin("@vercel/mcp-adapter", "dist/cli.js")
                .file("dist/cli.js", "console.log('adapter');"),
        )
        .build();
    assert_ran(&reg.npx(&env, &["-y", "handler@1.0.0"]), "adapter\n");
    let out = reg.npx(&env, &["-y", "-p", "handler@1.0.0", "mcp-adapter"]);
    assert_ran(&out, "adapter\n");
}

/// Several bins that all name one file (`detect-port-alt@1.1.6`): npx runs
/// it (libnpmexec), and so does safex; bins of different files and none named
/// like the package still need `-p`.
#[test]
fn bins_that_are_aliases_of_one_file_run() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::new("port-alt", "1.0.0")
                .bin("detect", "bin/port.js")
                .bin("detect-port", "./bin/port.js")
                .file("bin/port.js", "console.log('port');"),
        )
        .package(
            Pkg::new("two-tools", "1.0.0")
                .bin("one", "a.js")
                .bin("other", "b.js")
                .file("a.js", "console.log('a');")
                .file("b.js", "console.log('b');"),
        )
        .build();
    assert_ran(&reg.npx(&env, &["-y", "port-alt@1.0.0"]), "port\n");
    let out = reg.npx(&env, &["-y", "two-tools@1.0.0"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("several bins"), "{}", describe(&out));
}

/// Legacy names (`JSONStream`): npm runs existing packages with them.
#[test]
fn legacy_package_name_launches() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program(
            "JSONStream",
            "1.3.5",
            "console.log('legacy');",
        ))
        .build();
    assert_ran(&reg.npx(&env, &["-y", "JSONStream@1.3.5"]), "legacy\n");
}

// ---------------------------------------------------------------------------
// `main` and `exports` escaping the package; undeclared bundled `node_modules`
// ---------------------------------------------------------------------------

/// A tree of `entry-root` → `entry-dep` (whose entry point is `field`) and
/// `other` (which ships `evil.js`, never its own entry point).
fn escaping_entry_tree(env: &TestEnv, field: &str, value: serde_json::Value) -> FixtureRegistry {
    FixtureRegistry::builder()
        .package(
            forbidden_program(env, "entry-root")
                .dep("entry-dep", "^1.0.0")
                .dep("other", "^1.0.0"),
        )
        .package(
            Pkg::new("entry-dep", "1.0.0")
                .field(field, value)
                .file("index.js", "module.exports = 'inside';"),
        )
        .package(
            Pkg::new("other", "1.0.0")
                .file("index.js", "module.exports = 1;")
                .file("evil.js", js_touch(&marker(env, "program"))),
        )
        .build()
}

/// Node loads a dependency's `main` with no check: `../other/evil.js` runs a
/// file of another package. Refused (exit 5), naming the package and field.
#[test]
fn dependency_main_outside_the_package_is_refused() {
    for main in [
        "../other/evil.js",
        "./lib/../../other/evil.js",
        "%2e%2e/other/evil.js",
        "..\\other\\evil.js",
        "/etc/passwd",
    ] {
        let env = TestEnv::new();
        let reg = escaping_entry_tree(&env, "main", serde_json::json!(main));
        assert_launch_refused(
            &env,
            &reg,
            "entry-root@1.0.0",
            5,
            &["entry-dep@1.0.0", "`main`"],
            &[],
        );
    }
}

/// `exports` targets in every shape: string, conditions, nested conditions,
/// arrays of fallbacks, subpath patterns; and `imports`.
#[test]
fn exports_and_imports_targets_outside_the_package_are_refused() {
    for (field, value) in [
        ("exports", serde_json::json!("./../other/evil.js")),
        (
            "exports",
            serde_json::json!({".": {"node": {"require": "./../other/evil.js"}, "default": "./index.js"}}),
        ),
        (
            "exports",
            serde_json::json!({"./x/*": "./../../other/*.js", ".": "./index.js"}),
        ),
        (
            "exports",
            serde_json::json!({".": ["./nope.js", "../other/evil.js"]}),
        ),
        (
            "imports",
            serde_json::json!({"#evil": "./../other/evil.js"}),
        ),
    ] {
        let env = TestEnv::new();
        let reg = escaping_entry_tree(&env, field, value.clone());
        assert_launch_refused(
            &env,
            &reg,
            "entry-root@1.0.0",
            5,
            &["entry-dep@1.0.0", &format!("`{field}`")],
            &[],
        );
    }
}

/// The `main` and `exports` values real packages use all stay inside and
/// keep working: no extension, a directory, `./`, nested conditions.
#[test]
fn real_world_main_and_exports_forms_work() {
    let env = TestEnv::new();
    let lib = |name: &str| Pkg::new(name, "1.0.0");
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program(
                "entry-forms",
                "1.0.0",
                "console.log(['m-noext','m-dir','m-dot','m-slash','x-cond','x-sub','i-bare'].map(n => require(n)).join(' '));",
            )
            .dep("m-noext", "^1.0.0")
            .dep("m-dir", "^1.0.0")
            .dep("m-dot", "^1.0.0")
            .dep("m-slash", "^1.0.0")
            .dep("x-cond", "^1.0.0")
            .dep("x-sub", "^1.0.0")
            .dep("i-bare", "^1.0.0"),
        )
        .package(lib("m-noext").field("main", "lib/main").file("lib/main.js", "module.exports = 'a';"))
        .package(lib("m-dir").field("main", "./lib").file("lib/index.js", "module.exports = 'b';"))
        .package(lib("m-dot").field("main", ".").file("index.js", "module.exports = 'c';"))
        .package(lib("m-slash").field("main", "./").file("index.js", "module.exports = 'd';"))
        .package(
            lib("x-cond")
                .field("exports", serde_json::json!({".": {"import": "./esm/i.mjs", "require": {"node": "./cjs/i.js", "default": "./cjs/i.js"}}, "./package.json": "./package.json"}))
                .file("cjs/i.js", "module.exports = 'e';"),
        )
        .package(
            lib("x-sub")
                .field("exports", serde_json::json!({".": "./dist/index.js", "./feature/*": "./dist/feature/*.js", "./internal/*": null}))
                .file("dist/index.js", "module.exports = 'f';"),
        )
        .package(
            lib("i-bare")
                .field("imports", serde_json::json!({"#dep": "m-dot", "#own": "./own.js"}))
                .file("own.js", "module.exports = 'g';")
                .file("index.js", "module.exports = require('#own');"),
        )
        .build();
    assert_ran(
        &reg.npx(&env, &["-y", "entry-forms@1.0.0"]),
        "a b c d e f g\n",
    );
}

/// A tree where `bundle-dep`'s tarball carries `node_modules/helper`, which
/// its `bundleDependencies` do not declare, while the tree resolves the real
/// `helper` beside it: Node would load the carried copy first.
fn undeclared_bundle_tree(env: &TestEnv) -> FixtureRegistry {
    FixtureRegistry::builder()
        .package(
            Pkg::program(
                "bundle-root",
                "1.0.0",
                "console.log(require('bundle-dep'));",
            )
            .dep("bundle-dep", "^1.0.0")
            .dep("helper", "^1.0.0"),
        )
        .package(
            Pkg::new("bundle-dep", "1.0.0")
                .file("index.js", "module.exports = require('helper');")
                .file(
                    "node_modules/helper/package.json",
                    r#"{"name":"helper","version":"6.6.6"}"#,
                )
                .file(
                    "node_modules/helper/index.js",
                    format!(
                        "{}\nmodule.exports = 'carried';",
                        js_touch(&marker(env, "program"))
                    ),
                )
                .file("node_modules/.bin/x", "#!/bin/sh\n"),
        )
        .package(Pkg::new("helper", "1.0.0").file("index.js", "module.exports = 'locked';"))
        .build()
}

/// What runs is what the lock lists: the carried `helper` is not installed,
/// and stderr names the package and what was dropped.
#[test]
fn undeclared_node_modules_in_a_tarball_are_not_installed() {
    let env = TestEnv::new();
    let reg = undeclared_bundle_tree(&env);
    let out = reg.npx(&env, &["-y", "bundle-root@1.0.0"]);
    assert_ran(&out, "locked\n");
    assert!(!marker(&env, "program").exists(), "the carried copy ran");
    assert_warning(
        &out,
        &[
            "bundle-dep@1.0.0",
            "node_modules/helper",
            "node_modules/.bin",
            "bundleDependencies",
        ],
    );
    let carried: Vec<_> = crate::support::env::files_under(&env.cache())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("bundle-dep/node_modules"))
        .collect();
    assert!(carried.is_empty(), "{carried:?}");
    assert!(!crate::support::env::read_lock(&env).contains("6.6.6"));
    // Locked and rebuilt from the cache: the same.
    std::fs::remove_dir_all(env.cache().join("v1/npm/env")).ok();
    assert_ran(&reg.npx(&env, &["-y", "bundle-root@1.0.0"]), "locked\n");
    assert!(!marker(&env, "program").exists());
    // What was left out is not damage: `cache verify --deep` prunes alike.
    let out = env
        .safex()
        .args(["cache", "verify", "--deep"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

/// A declared bundle keeps working, with what its packages need from inside
/// the tarball; it is listed in the lock entry and the audit line, and its
/// packages' install scripts are reported like any dependency's (and refused
/// under `scripts.mode = "refuse"`).
#[test]
fn declared_bundled_packages_are_locked_audited_and_their_scripts_covered() {
    let env = TestEnv::new();
    let ran = marker(&env, "install");
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("bundler-root", "1.0.0", "console.log(require('bundler'));")
                .dep("bundler", "^1.0.0"),
        )
        .package(
            Pkg::new("bundler", "1.0.0")
                .dep("inner", "^2.0.0")
                .bundle_deps(&["inner"])
                .file("index.js", "module.exports = require('inner');")
                .file(
                    "node_modules/inner/package.json",
                    serde_json::json!({"name": "inner", "version": "2.0.1", "dependencies": {"@s/deep": "1"},
                        "scripts": {"postinstall": touch_script(&ran)}})
                    .to_string(),
                )
                .file("node_modules/inner/index.js", "module.exports = require('@s/deep');")
                .file("node_modules/@s/deep/package.json", r#"{"name":"@s/deep","version":"1.0.0"}"#)
                .file("node_modules/@s/deep/index.js", "module.exports = 'deep inside';")
                .file("node_modules/@s/stray/package.json", r#"{"name":"@s/stray","version":"1.0.0"}"#),
        )
        .build();
    let out = reg.npx(&env, &["-y", "bundler-root@1.0.0"]);
    assert_ran(&out, "deep inside\n");
    assert_no_markers(&[&ran]);
    assert_warning(
        &out,
        &["inner@2.0.1 (bundled in bundler@1.0.0)", "postinstall"],
    );
    assert_warning(&out, &["bundler@1.0.0", "node_modules/@s/stray"]);
    let lock = crate::support::env::read_lock(&env);
    assert!(
        lock.contains("\"node_modules/inner\" = \"2.0.1\""),
        "{lock}"
    );
    assert!(
        lock.contains("\"node_modules/@s/deep\" = \"1.0.0\""),
        "{lock}"
    );
    assert!(!lock.contains("stray"), "{lock}");
    // The warm launch's audit line lists them too.
    assert_ran(
        &reg.npx(&env, &["-y", "bundler-root@1.0.0"]),
        "deep inside\n",
    );
    let audit = std::fs::read_to_string(env.audit_log()).unwrap();
    let last = audit.lines().last().unwrap();
    assert!(
        last.contains("inner@2.0.1 (in bundler@1.0.0)") && last.contains("@s/deep@1.0.0"),
        "{last}"
    );

    // Under `scripts.mode = "refuse"` the bundled hook refuses the tree.
    let policy = env.root().join("scripts-refuse.toml");
    std::fs::write(&policy, "[scripts]\nmode = \"refuse\"\n").unwrap();
    let out =
        run(reg
            .safex(&env)
            .env("SAFEX_POLICY", &policy)
            .args(["npx", "-y", "bundler-root@1.0.0"]));
    assert_refused(
        &env,
        &out,
        3,
        &["inner@2.0.1", "bundler@1.0.0", "postinstall"],
        &[&ran],
        &[&policy],
    );
}

/// The lock lists a bundle's packages; an entry edited to list other
/// versions disagrees with the verified tarball and is refused.
#[test]
fn edited_bundled_listing_in_the_lock_is_refused() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("bundler-root", "1.0.0", "console.log(require('bundler'));")
                .dep("bundler", "^1.0.0"),
        )
        .package(
            Pkg::new("bundler", "1.0.0")
                .bundle_deps(&["inner"])
                .file("index.js", "module.exports = require('inner');")
                .file(
                    "node_modules/inner/package.json",
                    r#"{"name":"inner","version":"2.0.1"}"#,
                )
                .file("node_modules/inner/index.js", "module.exports = 'inner';"),
        )
        .build();
    assert_ran(&reg.npx(&env, &["-y", "bundler-root@1.0.0"]), "inner\n");
    let lock = crate::support::env::read_lock(&env);
    let edited = lock.replace(
        "\"node_modules/inner\" = \"2.0.1\"",
        "\"node_modules/inner\" = \"9.9.9\"",
    );
    assert_ne!(lock, edited, "{lock}");
    std::fs::write(env.lockfile(), edited).unwrap();
    std::fs::remove_dir_all(env.cache().join("v1/npm/env")).ok();
    let out = reg.npx(&env, &["-y", "bundler-root@1.0.0"]);
    assert_refused(
        &env,
        &out,
        4,
        &["bundler@1.0.0", "inner@9.9.9", "inner@2.0.1"],
        &[],
        &[],
    );
}

// ---------------------------------------------------------------------------
// Where tarballs come from
// ---------------------------------------------------------------------------

/// GitHub Packages and others redirect tarball downloads to blob storage:
/// the redirect is followed over HTTPS, the bytes are checked against the
/// registry's sha512, and the registry's token is not sent along.
#[test]
fn tarball_redirect_to_another_https_host_is_followed_without_the_token() {
    let reg = FixtureRegistry::builder()
        .package(Pkg::program(
            "blobbed",
            "1.0.0",
            "console.log('from blob storage');",
        ))
        .build();
    let front = crate::support::tls::TlsFront::new(reg.addr());
    let path = tarball_path("blobbed", "1.0.0");
    reg.fault(
        &path,
        Fault::Redirect(format!("{}{path}?signature=1", front.base)),
        1,
    );
    let env = TestEnv::new();
    let token = "npm-t0ken-for-the-registry";
    std::fs::write(
        env.home().join(".npmrc"),
        format!(
            "registry={}\n//{}/:_authToken={token}\n",
            reg.url(),
            reg.addr()
        ),
    )
    .unwrap();
    let out = run(env
        .safex()
        .env("SAFEX_CA_FILE", &front.ca)
        .args(["npx", "-y", "blobbed@1.0.0"]));
    assert_ran(&out, "from blob storage\n");
    let tarball: Vec<_> = reg
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .collect();
    let (direct, bounced): (Vec<_>, Vec<_>) = tarball
        .iter()
        .partition(|r| !r.target.contains("signature=1"));
    assert_eq!(
        (direct.len(), bounced.len()),
        (1, 1),
        "{:?}",
        reg.request_lines()
    );
    assert_eq!(
        direct[0].header("authorization"),
        Some(&*format!("Bearer {token}"))
    );
    assert_eq!(
        bounced[0].header("authorization"),
        None,
        "token sent to the blob host"
    );
}

/// A packument of the default registry that points a tarball at the
/// origin of the scoped registry `@corp` (HTTPS, with a token in `.npmrc`):
/// refused before any request reaches `@corp`'s registry, so its token is
/// never sent on the default registry's say-so, even though the bytes would
/// match. `@corp`'s own packages still come from it, with its token.
#[test]
fn tarball_on_another_configured_registry_is_refused() {
    let env = TestEnv::new();
    let corp = FixtureRegistry::builder().build();
    let front = crate::support::tls::TlsFront::new(corp.addr());
    let on_front = |name: &str| format!("{}{}", front.base, tarball_path(name, "1.0.0"));
    corp.publish(
        Pkg::program("@corp/tool", "1.0.0", "console.log('corp');")
            .tarball_url(&on_front("@corp/tool")),
    );
    let crossed = forbidden_program(&env, "crossed");
    corp.publish(crossed.clone());
    let on_corp = on_front("crossed");
    let public = FixtureRegistry::builder()
        .package(crossed.tarball_url(&on_corp))
        .build();
    let token = "corp-t0ken-never-for-public";
    let corp_host = front.base.trim_start_matches("https://");
    std::fs::write(
        env.home().join(".npmrc"),
        format!(
            "registry={}\n@corp:registry={}/\n//{corp_host}/:_authToken={token}\n",
            public.url(),
            front.base,
        ),
    )
    .unwrap();
    let launch = |spec: &str| {
        run(env
            .safex()
            .env("SAFEX_CA_FILE", &front.ca)
            .args(["npx", "-y", spec]))
    };
    let out = launch("crossed@1.0.0");
    let program = marker(&env, "program");
    assert_refused(&env, &out, 3, &["crossed"], &[&program], &[]);
    assert!(
        stderr(&out).contains("another configured registry or index"),
        "{}",
        describe(&out)
    );
    assert!(
        corp.requests().is_empty(),
        "safex fetched from the scoped registry: {:?}",
        corp.request_lines()
    );
    assert_ran(&launch("@corp/tool@1.0.0"), "corp\n");
    let reqs = corp.requests();
    assert!(!reqs.is_empty());
    for r in &reqs {
        assert_eq!(
            r.header("authorization"),
            Some(&*format!("Bearer {token}")),
            "{}",
            r.target
        );
    }
}

/// A redirect to plain HTTP on another host is refused before it is
/// followed: only the hash would vouch for the bytes, and nothing would
/// protect the request.
#[test]
fn tarball_redirect_to_plain_http_elsewhere_is_refused() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden_program(&env, "bounced"))
        .build();
    let path = tarball_path("bounced", "1.0.0");
    reg.fault_always(
        &path,
        Fault::Redirect(format!("http://localhost:{}{path}?x=1", reg.port())),
    );
    assert_launch_refused(&env, &reg, "bounced@1.0.0", 3, &["bounced"], &[]);
    assert!(
        !reg.request_lines().iter().any(|l| l.contains("x=1")),
        "{:?}",
        reg.request_lines()
    );
}

// ---------------------------------------------------------------------------
// Hashes: against the registry, and against the lock
// ---------------------------------------------------------------------------

fn some_other_sri() -> String {
    sri_sha512(b"not the tarball")
}

#[test]
fn integrity_mismatch_against_registry_is_refused() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden_program(&env, "tampered").integrity(&some_other_sri()))
        .build();
    assert_launch_refused(&env, &reg, "tampered@1.0.0", 4, &["tampered"], &[]);
}

/// Old packages declare only a sha1 `shasum`; a wrong one is still a mismatch.
#[test]
fn shasum_mismatch_without_integrity_is_refused() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            forbidden_program(&env, "tampered")
                .no_integrity()
                .shasum(&sha1_hex(b"not the tarball")),
        )
        .build();
    assert_launch_refused(&env, &reg, "tampered@1.0.0", 4, &["tampered"], &[]);
}

#[test]
fn integrity_mismatch_in_dependency_is_refused() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden_program(&env, "honest-root").dep("tampered-dep", "^2.0.0"))
        .package(Pkg::new("tampered-dep", "2.1.0").integrity(&some_other_sri()))
        .build();
    assert_launch_refused(&env, &reg, "honest-root@1.0.0", 4, &["tampered-dep"], &[]);
}

/// The same version republished with other bytes (and a registry that
/// consistently declares the new hash): the lock made at first launch wins.
#[test]
fn republished_bytes_are_refused_by_the_lock() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program(
            "republished",
            "1.0.0",
            "console.log('original');",
        ))
        .build();
    assert_ran(&reg.npx(&env, &["-y", "republished@1.0.0"]), "original\n");

    reg.publish(Pkg::program(
        "republished",
        "1.0.0",
        &js_touch(&marker(&env, "program")),
    ));
    std::fs::remove_dir_all(env.cache()).unwrap();
    std::fs::create_dir_all(env.cache()).unwrap();

    let out = reg.npx(&env, &["-y", "republished@1.0.0"]);
    assert_refused(
        &env,
        &out,
        4,
        &["republished"],
        &[&marker(&env, "program")],
        &[],
    );
    assert!(
        stderr_mentions(&out, "lock"),
        "the message should point at the lock\n{}",
        describe(&out)
    );
}

/// Same for a dependency that was republished after the root was locked.
#[test]
fn republished_dependency_is_refused_by_the_lock() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("locked-root", "1.0.0", "console.log(require('dep'));")
                .dep("dep", "^1.0.0"),
        )
        .package(Pkg::new("dep", "1.0.0").file("index.js", "module.exports = 'original';"))
        .build();
    assert_ran(&reg.npx(&env, &["-y", "locked-root@1.0.0"]), "original\n");

    reg.publish(Pkg::new("dep", "1.0.0").file("index.js", "module.exports = 'evil';"));
    std::fs::remove_dir_all(env.cache()).unwrap();
    std::fs::create_dir_all(env.cache()).unwrap();

    let out = reg.npx(&env, &["-y", "locked-root@1.0.0"]);
    assert_refused(&env, &out, 4, &["dep"], &[], &[]);
    assert!(
        stderr_mentions(&out, "lock"),
        "the message should point at the lock\n{}",
        describe(&out)
    );
}

fn stderr_mentions(out: &std::process::Output, word: &str) -> bool {
    String::from_utf8_lossy(&out.stderr)
        .to_lowercase()
        .contains(word)
}

// ---------------------------------------------------------------------------
// Where tarballs come from
// ---------------------------------------------------------------------------

#[test]
fn tarball_on_another_loopback_address_is_refused() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden_program(&env, "elsewhere").tarball_host("127.0.0.2"))
        .build();
    assert_launch_refused(&env, &reg, "elsewhere@1.0.0", 3, &["elsewhere"], &[]);
}

/// `localhost` reaches the very same server, and the bytes are right: the
/// host name alone makes it foreign.
#[test]
fn tarball_on_another_host_name_is_refused() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden_program(&env, "elsewhere").tarball_host("localhost"))
        .build();
    assert_launch_refused(&env, &reg, "elsewhere@1.0.0", 3, &["elsewhere"], &[]);
    assert_eq!(
        reg.tarball_hits("elsewhere", "1.0.0"),
        0,
        "{:?}",
        reg.request_lines()
    );
}

/// A dependency declared as git, URL or file is outside the registry's
/// hashes altogether.
#[test]
fn dependency_outside_the_registry_is_refused() {
    let specs = [
        "github:someone/dep",
        "git+https://127.0.0.1:1/dep.git",
        "http://127.0.0.1:1/dep.tgz",
        "file:../dep",
    ];
    let failures: Vec<String> = specs
        .iter()
        .filter_map(|dep_spec| {
            let env = TestEnv::new();
            let reg = FixtureRegistry::builder()
                .package(forbidden_program(&env, "odd-deps").dep("dep", dep_spec))
                .build();
            let out = reg.npx(&env, &["-y", "odd-deps@1.0.0"]);
            let ok = out.status.code() == Some(3)
                && stderr_mentions(&out, "dep")
                && !marker(&env, "program").exists();
            (!ok).then(|| format!("dependency spec `{dep_spec}`:\n{}", describe(&out)))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "expected exit 3 naming `dep`:\n{}",
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------
// What the command line may ask for
// ---------------------------------------------------------------------------

/// Run each `args` and collect the cases that were not refused with `code`
/// naming `names(spec)` (and, if `offline`, without touching the registry).
fn refusal_table(
    reg: &FixtureRegistry,
    cases: &[(Vec<&str>, &str)],
    code: i32,
    offline: bool,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (args, name) in cases {
        let env = TestEnv::new();
        reg.clear_log();
        let out = reg.npx(&env, args);
        eprintln!("{args:?}\n{}", describe(&out));
        let (program, shell) = (marker(&env, "program"), marker(&env, "shell"));
        let mut problems = refusal_problems(&env, &out, code, &[name], &[&program, &shell], &[]);
        if offline && !reg.requests().is_empty() {
            problems.push(format!("asked the registry {:?}", reg.request_lines()));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{args:?}: {}\n{}",
                problems.join("; "),
                describe(&out)
            ));
        }
    }
    failures
}

/// Ranges, tags and bare names are refused, and the hint names the exact
/// version to write instead.
#[test]
fn unpinned_specs_are_refused_with_the_exact_version() {
    let env = TestEnv::new();
    let mut b = FixtureRegistry::builder();
    for v in ["1.0.0", "1.1.0", "1.2.0", "1.3.0-rc.1"] {
        b = b.package(Pkg::program(
            "pinme",
            v,
            &js_touch(&marker(&env, "program")),
        ));
    }
    let reg = b.dist_tag("pinme", "next", "1.3.0-rc.1").build();
    let specs = [
        "pinme",
        "pinme@^1.0.0",
        "pinme@latest",
        "pinme@1.x",
        "pinme@>=1",
        "pinme@~1.2.0",
        "pinme@*",
        "pinme@1",
    ];
    let cases: Vec<(Vec<&str>, &str)> = specs.iter().map(|s| (vec![*s], "pinme@1.2.0")).collect();
    let failures = refusal_table(&reg, &cases, 2, false);
    assert!(
        failures.is_empty(),
        "expected exit 2 with a hint naming `pinme@1.2.0`:\n{}",
        failures.join("\n\n")
    );
    let out = reg.npx(&env, &["-y", "pinme@^1.0.0"]);
    assert_snapshot!(stable_stderr(&env, &out), @r"
    error: `pinme@^1.0.0` is not an exact version: safex launches only exact pins
    hint: pin the exact version: `safex npx pinme@1.2.0` (current on the registry)
    ");
}

/// Code from anywhere but the registry, unpinned and unhashed by nature.
#[test]
fn git_url_file_and_shell_specs_are_refused() {
    let env = TestEnv::new();
    let shell = format!(
        "node -e \"{}\"",
        js_touch(&marker(&env, "shell")).replace('"', "'")
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["github:x/y"], "github:x/y"),
        (vec!["git+https://h/x.git"], "git+https://h/x.git"),
        (vec!["./dir"], "./dir"),
        (vec!["file:../x"], "file:../x"),
        (vec!["http://127.0.0.1:1/x.tgz"], "http://127.0.0.1:1/x.tgz"),
        (vec!["-c", "echo hi"], "-c"),
        (vec!["-c", &shell], "-c"),
    ];
    let reg = FixtureRegistry::start();
    let failures = refusal_table(&reg, &cases, 2, true);
    assert!(
        failures.is_empty(),
        "expected exit 2 naming the spec:\n{}",
        failures.join("\n\n")
    );
    assert!(!marker(&env, "shell").exists());
}

/// Names that would climb out of `node_modules` or the registry's URL space,
/// or that npm could never have published, never reach the registry.
#[test]
fn hostile_names_are_refused() {
    let long = format!("{}@1.0.0", "a".repeat(300));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["../evil@1.0.0"], "../evil"),
        (vec!["@scope/../x@1.0.0"], "@scope/../x"),
        (vec!["a b@1.0.0"], "a b"),
        (vec!["%2e%2e@1.0.0"], "%2e%2e"),
        (vec!["@scope%2f..%2fx@1.0.0"], "%2f"),
        (vec!["node_modules@1.0.0"], "node_modules"),
        (vec![&long], "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
    ];
    let reg = FixtureRegistry::start();
    let failures = refusal_table(&reg, &cases, 2, true);
    assert!(
        failures.is_empty(),
        "expected exit 2 naming the name:\n{}",
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------
// Registry faults
// ---------------------------------------------------------------------------

fn fault_registry() -> FixtureRegistry {
    FixtureRegistry::builder()
        .package(
            Pkg::program("flaky", "1.0.0", "console.log(require('flaky-dep'));")
                .dep("flaky-dep", "^1.0.0"),
        )
        .package(Pkg::new("flaky-dep", "1.0.0").file("index.js", "module.exports = 'fine';"))
        .build()
}

fn launch_flaky(env: &TestEnv, reg: &FixtureRegistry) -> std::process::Output {
    reg.npx(env, &["-y", "flaky@1.0.0"])
}

#[test]
fn registry_503_twice_then_ok_is_retried() {
    let env = TestEnv::new();
    let reg = fault_registry();
    reg.fault(&packument_path("flaky"), Fault::Status(503), 2);
    assert_ran(&launch_flaky(&env, &reg), "fine\n");
    assert!(
        reg.packument_hits("flaky") >= 3,
        "{:?}",
        reg.request_lines()
    );
}

#[test]
fn truncated_tarball_once_then_ok_is_retried() {
    let env = TestEnv::new();
    let reg = fault_registry();
    reg.fault(&tarball_path("flaky-dep", "1.0.0"), Fault::Truncate, 1);
    assert_ran(&launch_flaky(&env, &reg), "fine\n");
    assert!(
        reg.tarball_hits("flaky-dep", "1.0.0") >= 2,
        "{:?}",
        reg.request_lines()
    );
}

#[test]
fn connection_reset_once_then_ok_is_retried() {
    let env = TestEnv::new();
    let reg = fault_registry();
    reg.fault(&packument_path("flaky"), Fault::Reset, 1);
    reg.fault(&tarball_path("flaky", "1.0.0"), Fault::Reset, 1);
    assert_ran(&launch_flaky(&env, &reg), "fine\n");
}

#[test]
fn slow_first_byte_is_waited_for() {
    let env = TestEnv::new();
    let reg = fault_registry();
    reg.fault(
        &packument_path("flaky"),
        Fault::SlowFirstByte(Duration::from_secs(2)),
        1,
    );
    reg.fault(
        &tarball_path("flaky-dep", "1.0.0"),
        Fault::SlowFirstByte(Duration::from_secs(2)),
        1,
    );
    assert_ran(&launch_flaky(&env, &reg), "fine\n");
}

#[test]
fn permanent_500_is_a_registry_error() {
    let env = TestEnv::new();
    let reg = fault_registry();
    reg.fault_always(&packument_path("flaky"), Fault::Status(500));
    let out = launch_flaky(&env, &reg);
    assert_refused(&env, &out, 6, &["flaky"], &[], &[]);
}

#[test]
fn permanent_500_on_a_dependency_tarball_is_a_registry_error() {
    let env = TestEnv::new();
    let reg = fault_registry();
    reg.fault_always(&tarball_path("flaky-dep", "1.0.0"), Fault::Status(500));
    let out = launch_flaky(&env, &reg);
    assert_refused(&env, &out, 6, &["flaky-dep"], &[], &[]);
}

// ---------------------------------------------------------------------------
// Concurrent launches and kills
// ---------------------------------------------------------------------------

fn spawn_launch(reg: &FixtureRegistry, env: &TestEnv, spec: &str) -> std::process::Child {
    let mut cmd: Command = reg.safex(env);
    cmd.args(["npx", "-y", spec])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn safex")
}

/// Two cold launches at once: both run, and the tarball is fetched once
/// (the loser of the race uses the winner's result).
#[test]
fn concurrent_cold_launches_share_one_download() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("racer", "1.0.0", ECHO_ARGV))
        .build();
    // Slow enough that both launches are in flight before either finishes.
    reg.fault(
        &tarball_path("racer", "1.0.0"),
        Fault::SlowFirstByte(Duration::from_secs(1)),
        1,
    );

    let mut a = spawn_launch(&reg, &env, "racer@1.0.0");
    let mut b = spawn_launch(&reg, &env, "racer@1.0.0");
    let (a, b) = (
        wait_with_timeout(&mut a, Duration::from_secs(120)),
        wait_with_timeout(&mut b, Duration::from_secs(120)),
    );
    eprintln!("requests: {:?}", reg.request_lines());
    assert_ran(&a, "[]\n");
    assert_ran(&b, "[]\n");
    assert_eq!(
        reg.tarball_hits("racer", "1.0.0"),
        1,
        "{:?}",
        reg.request_lines()
    );
    assert_nothing_written_outside_cache(&env, &[]);
}

/// 4 MiB that do not compress, and a program that prints their sha1: a
/// half-written copy would print something else (or fail).
fn big_program() -> (Pkg, String) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let blob: Vec<u8> = (0..4 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let js = "const c = require('crypto'), fs = require('fs'), p = require('path');\n\
              console.log(c.createHash('sha1').update(fs.readFileSync(p.join(__dirname, 'blob.bin'))).digest('hex'));";
    let expected = format!("{}\n", sha1_hex(&blob));
    (
        Pkg::program("killme", "1.0.0", js).file("blob.bin", blob),
        expected,
    )
}

fn assert_cache_verifies(env: &TestEnv) {
    let out = run(env.safex().args(["cache", "verify"]));
    assert_code(&out, 0);
}

/// Killed while the tarball is still arriving: the next launch starts over
/// and uses nothing half-written.
#[test]
fn kill_during_download_then_relaunch_succeeds() {
    let env = TestEnv::new();
    let (pkg, expected) = big_program();
    let reg = FixtureRegistry::builder().package(pkg).build();
    let slow = Fault::SlowBody {
        chunk: 64 << 10,
        delay: Duration::from_millis(40),
    };
    reg.fault(&tarball_path("killme", "1.0.0"), slow, 1);

    let mut child = spawn_launch(&reg, &env, "killme@1.0.0");
    let deadline = Instant::now() + Duration::from_secs(60);
    while reg.tarball_hits("killme", "1.0.0") == 0 {
        assert!(
            Instant::now() < deadline,
            "the tarball was never requested: {:?}",
            reg.request_lines()
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "safex ended ({status}) before fetching the tarball\n{}",
                describe(&child.wait_with_output().unwrap())
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(700)); // part of the body has arrived
    assert!(
        child.try_wait().unwrap().is_none(),
        "safex finished before it could be killed mid-download"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    assert_ran(&reg.npx(&env, &["-y", "killme@1.0.0"]), &expected);
    assert_cache_verifies(&env);
    assert_nothing_written_outside_cache(&env, &[]);
}

/// Killed at many instants across download, verify, unpack and lock write:
/// whatever state each kill leaves, the next launch is right.
#[test]
fn kill_at_any_instant_never_leaves_a_usable_half_install() {
    let env = TestEnv::new();
    let (pkg, expected) = big_program();
    let reg = FixtureRegistry::builder()
        .package(pkg.dep("killme-dep", "^1.0.0"))
        .package(Pkg::new("killme-dep", "1.0.0").file("index.js", "module.exports = 1;"))
        .build();
    for ms in [20, 60, 100, 150, 200, 300, 400, 600, 900] {
        let mut child = spawn_launch(&reg, &env, "killme@1.0.0");
        thread::sleep(Duration::from_millis(ms));
        let _ = child.kill();
        child.wait().unwrap();
    }
    assert_ran(&reg.npx(&env, &["-y", "killme@1.0.0"]), &expected);
    assert_cache_verifies(&env);
    assert_nothing_written_outside_cache(&env, &[]);
}

/// A registry behind a private CA named only by `.npmrc`'s `cafile` (as
/// corporate laptops have it) is trusted, as npm trusts it; without it the
/// launch is refused as a TLS failure, never sent in clear.
#[test]
fn npmrc_cafile_is_trusted_for_the_registry() {
    let reg = FixtureRegistry::builder().build();
    let front = crate::support::tls::TlsFront::new(reg.addr());
    let tarball = format!("{}{}", front.base, tarball_path("behindca", "1.0.0"));
    reg.publish(Pkg::program("behindca", "1.0.0", "console.log('trusted');").tarball_url(&tarball));
    let env = TestEnv::new();
    let npmrc = format!("registry={}/\n", front.base);
    std::fs::write(env.home().join(".npmrc"), &npmrc).unwrap();
    let out = run(env.safex().args(["npx", "-y", "behindca@1.0.0"]));
    assert!(!out.status.success(), "ran without trusting the CA");
    assert!(reg.requests().is_empty(), "{:?}", reg.request_lines());
    std::fs::write(
        env.home().join(".npmrc"),
        format!("{npmrc}cafile={}\n", front.ca.display()),
    )
    .unwrap();
    let out = run(env.safex().args(["npx", "-y", "behindca@1.0.0"]));
    assert_ran(&out, "trusted\n");
}
