//! One test per PyPI threat class of DESIGN §5 and §9, each running the real
//! binary (`safex uvx`) against the in-process simple index
//! (`support/pyfixture.rs`). Exit codes are those of docs/pypi-contract.md.
//!
//! Payloads are harmless but observable: code that must never run (a build
//! backend, `setup.py`, a `.pth` hook, an injected entry point, a refused
//! program) creates a marker file inside the test's temp root, and archive
//! escapes aim at paths inside that root, so "it did not happen" is checked
//! by looking (`assert_no_markers`, `written_outside_cache`). The control
//! test shows that each payload does leave its marker when Python runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::env::{TestEnv, stderr, stdout};
use crate::support::fixture::{
    assert_code, assert_no_markers, assert_nothing_written_outside_cache, assert_ran, describe,
    refusal_problems, run, wait_with_timeout,
};
use crate::support::pyfixture::*;
use crate::support::snapshot::stable_stderr;
use insta::assert_snapshot;

/// A file that exists only if code the test forbids has run.
fn marker(env: &TestEnv, what: &str) -> PathBuf {
    env.root().join(format!("ran-{what}"))
}

/// Every marker a test in this file may arm.
fn all_markers(env: &TestEnv) -> Vec<PathBuf> {
    ["program", "pth", "backend", "setup", "evil", "shell"]
        .iter()
        .map(|w| marker(env, w))
        .collect()
}

/// A program that must never be launched: it leaves a marker if it is.
fn forbidden_program(env: &TestEnv, name: &str, version: &str) -> PyPkg {
    PyPkg::program(name, version, &py_touch(&marker(env, "program")))
}

/// Launch `args` and check it was refused with `code`, naming each of
/// `names`, with no marker, nothing on stdout, nothing written outside the
/// cache (other than `created`).
#[track_caller]
fn assert_launch_refused(
    env: &TestEnv,
    idx: &PyIndex,
    args: &[&str],
    code: i32,
    names: &[&str],
    created: &[&Path],
) -> Output {
    let out = idx.uvx(env, args);
    assert_refused_no_payload(env, &out, code, names, created);
    out
}

/// [`assert_py_refused`] with every payload marker of this file absent.
#[track_caller]
fn assert_refused_no_payload(
    env: &TestEnv,
    out: &Output,
    code: i32,
    names: &[&str],
    created: &[&Path],
) {
    let markers = all_markers(env);
    let markers: Vec<&Path> = markers.iter().map(PathBuf::as_path).collect();
    assert_py_refused(env, out, code, names, &markers, created);
}

/// A policy file in `env` with `python.pth = "refuse"`, for `SAFEX_POLICY`.
fn pth_refuse_policy(env: &TestEnv) -> PathBuf {
    let p = env.root().join("pth-refuse.toml");
    std::fs::write(&p, "[python]\npth = \"refuse\"\n").unwrap();
    p
}

/// [`assert_launch_refused`] under `python.pth = "refuse"`.
#[track_caller]
fn assert_refused_under_pth_refuse(env: &TestEnv, idx: &PyIndex, args: &[&str], names: &[&str]) {
    let policy = pth_refuse_policy(env);
    let out = run(idx
        .safex(env)
        .env("SAFEX_POLICY", &policy)
        .arg("uvx")
        .args(args));
    assert_refused_no_payload(env, &out, 5, names, &[&policy]);
}

fn stderr_mentions(out: &Output, word: &str) -> bool {
    stderr(out).to_lowercase().contains(&word.to_lowercase())
}

// ---------------------------------------------------------------------------
// Controls: each payload leaves its marker when it does run
// ---------------------------------------------------------------------------

/// Run by Python directly (not by safex), every payload of this file leaves
/// its marker: the console script, a `.pth` line at interpreter start, the
/// in-tree build backend, `setup.py`, and an injected entry point under a
/// naive script template.
#[test]
fn control_payloads_leave_their_markers_when_run_by_python() {
    let env = TestEnv::new();
    let scratch = tempfile::tempdir().unwrap();
    let home = scratch.path();

    // Console script body.
    let out = python(home, &["-c", &py_touch(&marker(&env, "program"))]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(marker(&env, "program").exists());

    // A `.pth` line starting with `import` runs when `site` reads the dir.
    let site = home.join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("evil.pth"), pth_payload(&marker(&env, "pth"))).unwrap();
    let out = python(
        home,
        &[
            "-c",
            &format!(
                "import site; site.addsitedir({})",
                py_str(site.to_str().unwrap())
            ),
        ],
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(marker(&env, "pth").exists(), ".pth payload did not run");

    // Build backend and setup.py from an sdist.
    let pkg = PyPkg::library("built", "1.0.0", "")
        .sdist_only()
        .with_build_backend(&marker(&env, "backend"));
    let tree = home.join("sdist");
    tar::Archive::new(flate2::read::GzDecoder::new(&pkg.sdist_bytes()[..]))
        .unpack(&tree)
        .unwrap();
    let top = tree.join("built-1.0.0");
    let out = python(
        home,
        &[
            "-c",
            &format!(
                "import sys; sys.path.insert(0, {}); import {BACKEND_MODULE}",
                py_str(top.to_str().unwrap())
            ),
        ],
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        marker(&env, "backend").exists(),
        "backend payload did not run"
    );
    let legacy = PyPkg::library("legacy", "1.0.0", "")
        .sdist_only()
        .setup_py(&marker(&env, "setup"));
    let tree = home.join("legacy");
    tar::Archive::new(flate2::read::GzDecoder::new(&legacy.sdist_bytes()[..]))
        .unpack(&tree)
        .unwrap();
    let _ = python(
        home,
        &[
            tree.join("legacy-1.0.0/setup.py").to_str().unwrap(),
            "--version",
        ],
    );
    assert!(
        marker(&env, "setup").exists(),
        "setup.py payload did not run"
    );

    // An entry point value with a statement appended, under the template
    // `from {module} import {attr}` that naive installers write.
    let evil_dir = home.join("ep");
    std::fs::create_dir_all(evil_dir.join("ep_inject")).unwrap();
    std::fs::write(evil_dir.join("ep_inject/__init__.py"), "").unwrap();
    std::fs::write(evil_dir.join("ep_inject/cli.py"), "def main():\n    pass\n").unwrap();
    std::fs::write(evil_dir.join("evil.py"), py_touch(&marker(&env, "evil"))).unwrap();
    let (module, attr) = INJECTED_ENTRY_POINT.split_once(':').unwrap();
    let script = format!(
        "import sys; sys.path.insert(0, {})\nfrom {module} import {attr}\n",
        py_str(evil_dir.to_str().unwrap())
    );
    let out = python(home, &["-c", &script]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        marker(&env, "evil").exists(),
        "entry point injection did not run"
    );
}

/// And launched by safex, a forbidden program does run (so the launch
/// tests' markers would show it).
#[test]
fn control_forbidden_program_leaves_its_marker_when_launched() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(forbidden_program(&env, "harmless", "1.0.0"))
        .build();
    let out = idx.uvx(&env, &["harmless==1.0.0"]);
    assert_code(&out, 0);
    assert!(marker(&env, "program").exists(), "{}", describe(&out));
}

/// `import os; <touch>`: a `.pth` line that runs code.
fn pth_payload(path: &Path) -> String {
    format!("import os; {}\n", py_touch(path))
}

/// `module:attr; import evil`: valid-looking, and a statement rides along.
const INJECTED_ENTRY_POINT: &str = "ep_inject.cli:main; import evil";

// ---------------------------------------------------------------------------
// Wheels only: sdists and build backends never run
// ---------------------------------------------------------------------------

#[test]
fn sdist_only_root_is_refused_and_never_built() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            forbidden_program(&env, "source-only", "1.0.0")
                .sdist_only()
                .setup_py(&marker(&env, "setup")),
        )
        .build();
    let out = assert_launch_refused(
        &env,
        &idx,
        &["source-only==1.0.0"],
        3,
        &["source-only"],
        &[],
    );
    assert!(
        stderr_mentions(&out, "no build backend will run"),
        "the message should say no build backend will run\n{}",
        describe(&out)
    );
}

#[test]
fn sdist_only_dependency_is_refused() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(forbidden_program(&env, "wheel-root", "1.0.0").dep("source-dep>=1.0"))
        .package(
            PyPkg::library("source-dep", "1.2.0", "")
                .sdist_only()
                .with_build_backend(&marker(&env, "backend")),
        )
        .build();
    let out = assert_launch_refused(&env, &idx, &["wheel-root==1.0.0"], 3, &["source-dep"], &[]);
    assert!(
        stderr_mentions(&out, "no build backend will run"),
        "{}",
        describe(&out)
    );
}

/// An sdist whose `pyproject.toml` names an in-tree backend: a frontend
/// would import it (and run `setup.py` through setuptools' legacy path).
#[test]
fn build_backend_sdist_is_refused_and_never_run() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            forbidden_program(&env, "backend-pkg", "1.0.0")
                .sdist_only()
                .with_build_backend(&marker(&env, "backend")),
        )
        .build();
    assert_launch_refused(
        &env,
        &idx,
        &["backend-pkg==1.0.0"],
        3,
        &["backend-pkg"],
        &[],
    );
}

/// With both a wheel and a build-backend sdist, the wheel is used and the
/// sdist never touched.
#[test]
fn wheel_is_used_and_the_sdist_beside_it_is_never_built() {
    let env = TestEnv::new();
    let backend = marker(&env, "backend");
    let idx = PyIndex::builder()
        .package(
            PyPkg::program("both-kinds", "1.0.0", "print('wheel ran')")
                .with_build_backend(&backend),
        )
        .build();
    assert_ran(&idx.uvx(&env, &["both-kinds==1.0.0"]), "wheel ran\n");
    assert_no_markers(&[&backend]);
    assert_eq!(
        idx.file_hits(&sdist_filename("both-kinds", "1.0.0")),
        0,
        "{:?}",
        idx.request_lines()
    );
    assert_nothing_written_outside_cache(&env, &[]);
}

/// A version whose only wheel is for another platform: no compatible wheel.
#[test]
fn no_wheel_for_this_platform_is_refused() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            forbidden_program(&env, "windows-only", "1.0.0").wheel_tags("cp311-cp311-win_amd64"),
        )
        .build();
    assert_launch_refused(
        &env,
        &idx,
        &["windows-only==1.0.0"],
        3,
        &["windows-only"],
        &[],
    );
}

// ---------------------------------------------------------------------------
// `.pth` startup hooks
// ---------------------------------------------------------------------------

/// The default, like npm install scripts: the wheel is installed without
/// the lines that would run, they are named on stderr, and the program runs
/// (setuptools' `distutils-precedence.pth`, coverage's `a1_coverage.pth`).
/// Path lines of the same file still work.
#[test]
fn executable_pth_lines_are_stripped_and_named() {
    let env = TestEnv::new();
    let payload = pth_payload(&marker(&env, "pth"));
    let idx = PyIndex::builder()
        .package(
            PyPkg::program(
                "pth-hook",
                "1.0.0",
                "import extra_mod\nprint(extra_mod.VALUE)",
            )
            .pth(
                "pth_hook_init.pth",
                &format!("{payload}\npth_hook_extra\n  import os; os.exit(3)\n"),
            )
            .file("pth_hook_extra/extra_mod.py", "VALUE = 'path line kept'\n"),
        )
        .build();
    let out = idx.uvx(&env, &["pth-hook==1.0.0"]);
    assert_ran(&out, "path line kept\n");
    assert!(!marker(&env, "pth").exists(), "the .pth payload ran");
    let err = stderr(&out);
    assert!(
        err.contains("pth_hook_init.pth") && err.contains("pth-hook==1.0.0"),
        "{err}"
    );
    // Said on the launch that built the tree, not on every warm one.
    let warm = idx.uvx(&env, &["pth-hook==1.0.0"]);
    assert_ran(&warm, "path line kept\n");
    assert!(
        !stderr(&warm).contains("pth_hook_init.pth"),
        "{}",
        stderr(&warm)
    );
    assert_nothing_written_outside_cache(&env, &[]);
}

/// A `.pth` whose every line would run is not installed at all; the
/// interpreter's own start is then untouched (the payload's marker stays
/// absent even when Python starts directly from the venv).
#[test]
fn executable_only_pth_is_not_installed() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(PyPkg::program("pth-only", "1.0.0", "print('ran')").pth(
            "distutils-precedence.pth",
            &pth_payload(&marker(&env, "pth")),
        ))
        .build();
    assert_ran(&idx.uvx(&env, &["pth-only==1.0.0"]), "ran\n");
    let found: Vec<_> = crate::support::env::files_under(&env.cache())
        .into_iter()
        .filter(|p| p.ends_with("distutils-precedence.pth"))
        .collect();
    assert!(found.is_empty(), "{found:?}");
    assert!(!marker(&env, "pth").exists());
}

#[test]
fn executable_pth_is_refused_under_pth_refuse() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            forbidden_program(&env, "pth-hook", "1.0.0")
                .pth("pth_hook_init.pth", &pth_payload(&marker(&env, "pth"))),
        )
        .build();
    assert_refused_under_pth_refuse(
        &env,
        &idx,
        &["pth-hook==1.0.0"],
        &["pth-hook", "pth_hook_init.pth"],
    );
}

#[test]
fn executable_pth_in_a_dependency_is_refused_under_pth_refuse() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(forbidden_program(&env, "innocent-root", "1.0.0").dep("pth-dep>=1"))
        .package(
            PyPkg::library("pth-dep", "1.0.0", "")
                .pth("zzz.pth", &pth_payload(&marker(&env, "pth"))),
        )
        .build();
    assert_refused_under_pth_refuse(
        &env,
        &idx,
        &["innocent-root==1.0.0"],
        &["pth-dep", "zzz.pth"],
    );
}

/// `<name>.data/purelib/x.pth` lands in site-packages just the same.
#[test]
fn executable_pth_in_the_data_directory_is_refused_under_pth_refuse() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            forbidden_program(&env, "pth-data", "1.0.0")
                .data("purelib/hidden.pth", pth_payload(&marker(&env, "pth"))),
        )
        .build();
    assert_refused_under_pth_refuse(
        &env,
        &idx,
        &["pth-data==1.0.0"],
        &["pth-data", "hidden.pth"],
    );
}

/// A `.pth` of plain paths is fine, and it works: the directory it names is
/// importable.
#[test]
fn path_only_pth_is_accepted() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            PyPkg::program(
                "pth-paths",
                "1.0.0",
                "import extra_mod\nprint(extra_mod.VALUE)",
            )
            .pth("pth_paths.pth", "# a comment\n\npth_paths_extra\n")
            .file(
                "pth_paths_extra/extra_mod.py",
                "VALUE = 'from the pth dir'\n",
            ),
        )
        .build();
    assert_ran(&idx.uvx(&env, &["pth-paths==1.0.0"]), "from the pth dir\n");
    assert_nothing_written_outside_cache(&env, &[]);
}

/// Python 3.13 splits `.pth` files with `str.splitlines()`: a form feed (or
/// `\x0b`, `\x1c`-`\x1e`, U+0085, U+2028, U+2029) starts a new line there,
/// and a line after it that starts with `import` runs. Older versions see
/// one harmless path line. The default strips it as 3.13 would see it; the
/// path line before it is kept.
#[test]
fn pth_line_after_a_python313_line_break_is_stripped() {
    let env = TestEnv::new();
    let payload = pth_payload(&marker(&env, "pth"));
    for brk in ["\x0c", "\x0b", "\u{85}", "\u{2028}", "\x1d"] {
        let name = format!("ff-hook-{}", brk.len() + brk.as_bytes()[0] as usize);
        let idx = PyIndex::builder()
            .package(
                PyPkg::program(&name, "1.0.0", "import extra_mod\nprint(extra_mod.VALUE)")
                    .pth("ff_hook.pth", &format!("ff_hook_extra{brk}{payload}"))
                    .file("ff_hook_extra/extra_mod.py", "VALUE = 'path line kept'\n"),
            )
            .build();
        let spec = format!("{name}==1.0.0");
        let out = idx.uvx(&env, &[&spec]);
        assert_ran(&out, "path line kept\n");
        assert!(stderr(&out).contains("ff_hook.pth"), "{}", describe(&out));
        let installed: Vec<_> = crate::support::env::files_under(&env.cache())
            .into_iter()
            .filter(|p| p.ends_with("ff_hook.pth"))
            .collect();
        assert!(!installed.is_empty(), "the path line went too");
        for p in installed {
            let text = std::fs::read(&p).unwrap();
            assert_eq!(text, b"ff_hook_extra\n", "{brk:?}: {p:?}");
        }
        assert!(!marker(&env, "pth").exists());
    }
}

#[test]
fn pth_line_after_a_python313_line_break_is_refused_under_pth_refuse() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(forbidden_program(&env, "ff-hook", "1.0.0").pth(
            "ff_hook.pth",
            &format!("ff_hook_extra\u{2029}{}", pth_payload(&marker(&env, "pth"))),
        ))
        .build();
    assert_refused_under_pth_refuse(&env, &idx, &["ff-hook==1.0.0"], &["ff-hook", "ff_hook.pth"]);
}

// ---------------------------------------------------------------------------
// `sitecustomize`/`usercustomize`, and modules shadowed from `bin/`
// ---------------------------------------------------------------------------

/// `site.py` imports `sitecustomize` and `usercustomize` from anywhere on
/// `sys.path` at every start. Like executable `.pth` lines, the default
/// installs the wheel without them and names them; the program runs, and
/// the hooks did not.
#[test]
fn customize_modules_are_left_out_and_named() {
    let env = TestEnv::new();
    let hook = format!("{}\n", py_touch(&marker(&env, "pth")));
    let idx = PyIndex::builder()
        .package(
            PyPkg::program("custom-hook", "1.0.0", "print('ran')")
                .file("sitecustomize.py", hook.clone())
                .file("usercustomize/__init__.py", hook.clone())
                .data("platlib/sitecustomize.abi3.so", hook.clone())
                .data("purelib/usercustomize.py", hook.clone()),
        )
        .build();
    let out = idx.uvx(&env, &["custom-hook==1.0.0"]);
    assert_ran(&out, "ran\n");
    let err = stderr(&out);
    for name in [
        "`sitecustomize.py`",
        "`usercustomize/__init__.py`",
        "purelib/usercustomize.py",
    ] {
        assert!(err.contains(name), "{name} not named: {err}");
    }
    let left: Vec<_> = crate::support::env::files_under(&env.cache())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("customize"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!marker(&env, "pth").exists(), "a customize hook ran");
    assert_deep_verify_clean(&env);
}

/// What the installer leaves out by design is not damage to `cache verify --deep`.
fn assert_deep_verify_clean(env: &TestEnv) {
    let out = env
        .safex()
        .args(["cache", "verify", "--deep"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
}

/// A `sitecustomize` deep in a package is only a module (opentelemetry-
/// instrumentation ships one for its own launcher) until a `.pth` path line,
/// here of another wheel, puts its directory on `sys.path`: that line is
/// left out by default, and refused under `python.pth = "refuse"`.
#[test]
fn path_line_that_reaches_a_deep_sitecustomize_is_stripped_or_refused() {
    let env = TestEnv::new();
    let build = |env: &TestEnv| {
        PyIndex::builder()
            .package(
                PyPkg::program("deep-root", "1.0.0", "print('ran')")
                    .dep("deep-hook>=1")
                    .dep("deep-pth>=1"),
            )
            .package(PyPkg::library("deep-hook", "1.0.0", "").file(
                "deep_hook/auto/sitecustomize.py",
                format!("{}\n", py_touch(&marker(env, "pth"))),
            ))
            .package(
                PyPkg::library("deep-pth", "1.0.0", "").pth("deep_pth.pth", "deep_hook/auto\n"),
            )
            .build()
    };
    let idx = build(&env);
    let out = idx.uvx(&env, &["deep-root==1.0.0"]);
    assert_ran(&out, "ran\n");
    assert!(stderr(&out).contains("deep_pth.pth"), "{}", describe(&out));
    assert!(!marker(&env, "pth").exists(), "the deep sitecustomize ran");
    let kept: Vec<_> = crate::support::env::files_under(&env.cache())
        .into_iter()
        .filter(|p| p.ends_with("deep_hook/auto/sitecustomize.py"))
        .collect();
    assert_eq!(kept.len(), 1, "the module itself stays: {kept:?}");

    let env = TestEnv::new();
    let idx = build(&env);
    assert_refused_under_pth_refuse(
        &env,
        &idx,
        &["deep-root==1.0.0"],
        &["deep_pth.pth", "sitecustomize"],
    );
}

#[test]
fn customize_module_is_refused_under_pth_refuse() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            forbidden_program(&env, "custom-hook", "1.0.0")
                .data("purelib/sitecustomize.py", py_touch(&marker(&env, "pth"))),
        )
        .build();
    assert_refused_under_pth_refuse(
        &env,
        &idx,
        &["custom-hook==1.0.0"],
        &["custom-hook", "sitecustomize.py"],
    );
}

/// safex runs `python bin/<script>`, so `bin/` is `sys.path[0]`: a
/// `.data/scripts/json.py` would be what `import json` loads in the program.
/// It is left out and named; the program gets the real `json`.
#[test]
fn script_that_shadows_a_module_is_left_out_and_named() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            PyPkg::program("shadow-bin", "1.0.0", "import json\nprint(json.dumps([1]))")
                .data(
                    "scripts/json.py",
                    format!("{}\n", py_touch(&marker(&env, "evil"))),
                )
                .data("scripts/shadow-tool", "#!python\nprint('tool')\n"),
        )
        .build();
    let out = idx.uvx(&env, &["shadow-bin==1.0.0"]);
    assert_ran(&out, "[1]\n");
    assert!(!marker(&env, "evil").exists(), "bin/json.py was imported");
    let err = stderr(&out);
    assert!(
        err.contains("scripts/json.py") && err.contains("`json`"),
        "{err}"
    );
    let bin: Vec<_> = crate::support::env::files_under(&env.cache())
        .into_iter()
        .filter(|p| p.ends_with("bin/json.py"))
        .collect();
    assert!(bin.is_empty(), "{bin:?}");
    // The plain script beside it is installed.
    let tool: Vec<_> = crate::support::env::files_under(&env.cache())
        .into_iter()
        .filter(|p| p.ends_with("bin/shadow-tool"))
        .collect();
    assert_eq!(tool.len(), 1, "{tool:?}");
    assert_deep_verify_clean(&env);
}

/// Under `python.pth = "refuse"` too: such a file is never what safex
/// launches, so it is left out rather than refusing the tree.
#[test]
fn script_that_shadows_a_module_is_left_out_under_pth_refuse_too() {
    let env = TestEnv::new();
    let policy = pth_refuse_policy(&env);
    let idx = PyIndex::builder()
        .package(
            PyPkg::program("shadow-bin", "1.0.0", "import typing\nprint('real typing')")
                .data("scripts/typing.py", py_touch(&marker(&env, "evil"))),
        )
        .build();
    let out = run(idx
        .safex(&env)
        .env("SAFEX_POLICY", &policy)
        .args(["uvx", "shadow-bin==1.0.0"]));
    assert_ran(&out, "real typing\n");
    assert!(
        stderr(&out).contains("scripts/typing.py"),
        "{}",
        describe(&out)
    );
    assert!(!marker(&env, "evil").exists());
}

/// A console script takes `bin/` off `sys.path` before it imports anything:
/// a file there that no rule names (`importlib.import_module` accepts any
/// string) is still not importable from the program.
#[test]
fn console_script_does_not_import_from_bin() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            PyPkg::program(
                "bin-path",
                "1.0.0",
                "import importlib, sys\n\
                 try:\n    importlib.import_module('bin-helper')\n    print('imported from bin')\n\
                 except ImportError:\n    print('not importable')\n\
                 print(any(p.endswith('/bin') for p in sys.path))",
            )
            .data(
                "scripts/bin-helper.py",
                format!("{}\n", py_touch(&marker(&env, "evil"))),
            ),
        )
        .build();
    let out = idx.uvx(&env, &["bin-path==1.0.0"]);
    assert_ran(&out, "not importable\nFalse\n");
    assert!(!marker(&env, "evil").exists());
}

// ---------------------------------------------------------------------------
// Several wheels, one environment
// ---------------------------------------------------------------------------

/// Namespace packages ship one byte-identical `__init__.py` in several
/// wheels (`databricks-mcp` → `databricks-sdk`, `databricks-ai-search`): pip
/// and uv install them silently, and so does safex.
#[test]
fn byte_identical_file_in_two_wheels_is_fine() {
    let env = TestEnv::new();
    let init = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n";
    let idx = PyIndex::builder()
        .package(
            PyPkg::program(
                "ns-app",
                "1.0.0",
                "import nsp.a, nsp.b\nprint(nsp.a.X + nsp.b.Y)",
            )
            .dep("ns-a>=1")
            .dep("ns-b>=1"),
        )
        .package(
            PyPkg::library("ns-a", "1.0.0", "")
                .file("nsp/__init__.py", init)
                .file("nsp/a.py", "X = 'a'\n"),
        )
        .package(
            PyPkg::library("ns-b", "1.0.0", "")
                .file("nsp/__init__.py", init)
                .file("nsp/b.py", "Y = 'b'\n"),
        )
        .build();
    assert_ran(&idx.uvx(&env, &["ns-app==1.0.0"]), "ab\n");
}

/// Two wheels with *different* files at one path: refused, naming both,
/// whatever order they install in (pip would let the last one win).
#[test]
fn different_files_at_one_path_in_two_wheels_are_refused() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            forbidden_program(&env, "clash-app", "1.0.0")
                .dep("clash-a>=1")
                .dep("clash-b>=1"),
        )
        .package(PyPkg::library("clash-a", "1.0.0", "").file("shared_mod.py", "WHO = 'a'\n"))
        .package(PyPkg::library("clash-b", "1.0.0", "").file("shared_mod.py", "WHO = 'b'\n"))
        .build();
    assert_launch_refused(
        &env,
        &idx,
        &["clash-app==1.0.0"],
        5,
        &["clash-a", "clash-b", "shared_mod.py"],
        &[],
    );
}

// ---------------------------------------------------------------------------
// Unsafe wheels: escapes, links, duplicates, bombs
// ---------------------------------------------------------------------------

/// `pkg` also carrying something unsafe: refused with exit 5, naming the
/// package, before anything runs or lands outside the cache.
fn unsafe_wheel_is_refused(env: &TestEnv, pkg: PyPkg, created: &[&Path]) -> Output {
    let spec = format!("{}=={}", pkg.name(), pkg.version());
    let name = pkg.name().to_string();
    let idx = PyIndex::builder().package(pkg).build();
    assert_launch_refused(env, &idx, &[&spec], 5, &[&name], created)
}

/// A zip name that climbs from the wheel root up to `/` and back down to
/// `path`: where a naive unpacker writes it, wherever the venv is.
fn climbing_to(path: &Path) -> String {
    let rel = path.to_str().unwrap().trim_start_matches('/');
    format!("{}{rel}", "../".repeat(40))
}

#[test]
fn zip_slip_parent_member_is_refused() {
    let env = TestEnv::new();
    let pkg = forbidden_program(&env, "zip-slip", "1.0.0").raw_member("../escaped-zip-slip", "x");
    unsafe_wheel_is_refused(&env, pkg, &[]);
}

#[test]
fn zip_slip_to_an_absolute_location_is_refused() {
    let env = TestEnv::new();
    let target = env.root().join("escaped-by-traversal");
    let pkg = forbidden_program(&env, "zip-slip", "1.0.0").raw_member(&climbing_to(&target), "x");
    unsafe_wheel_is_refused(&env, pkg, &[]);
    assert!(!target.exists());
}

/// A `..` inside the data directory climbs out of the venv all the same.
#[test]
fn data_directory_traversal_is_refused() {
    let env = TestEnv::new();
    let pkg = forbidden_program(&env, "data-slip", "1.0.0")
        .data("purelib/../../../../../../escaped-data", "x");
    unsafe_wheel_is_refused(&env, pkg, &[]);
}

#[test]
fn absolute_member_is_refused() {
    let env = TestEnv::new();
    let target = env.root().join("escaped-absolute");
    let pkg =
        forbidden_program(&env, "abs-member", "1.0.0").raw_member(target.to_str().unwrap(), "x");
    unsafe_wheel_is_refused(&env, pkg, &[]);
    assert!(!target.exists());
}

#[test]
fn drive_letter_and_backslash_members_are_refused() {
    let members = ["C:/escaped", "C:\\escaped", "..\\escaped"];
    let failures: Vec<String> = members
        .iter()
        .filter_map(|m| {
            let env = TestEnv::new();
            let pkg = forbidden_program(&env, "drive-member", "1.0.0").raw_member(m, "x");
            let idx = PyIndex::builder().package(pkg).build();
            let out = idx.uvx(&env, &["drive-member==1.0.0"]);
            let ok = out.status.code() == Some(5)
                && names(&stderr(&out), "drive-member")
                && !marker(&env, "program").exists()
                && env.written_outside_cache().is_empty();
            (!ok).then(|| format!("member `{m}`:\n{}", describe(&out)))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "expected exit 5 naming `drive-member`:\n{}",
        failures.join("\n\n")
    );
}

/// A symlink out of the package, then a file through it.
#[test]
fn symlink_member_escaping_is_refused() {
    let env = TestEnv::new();
    let outside = env.root().to_str().unwrap().to_string();
    let pkg = forbidden_program(&env, "zip-link", "1.0.0")
        .symlink("zip_link/link", &outside)
        .raw_member("zip_link/link/escaped-through-symlink", "x");
    unsafe_wheel_is_refused(&env, pkg, &[]);
}

/// Symlinks are refused outright, not judged by where they point.
#[test]
fn symlink_member_inside_the_package_is_refused() {
    let env = TestEnv::new();
    let pkg = forbidden_program(&env, "zip-link", "1.0.0").symlink("zip_link/alias.py", "cli.py");
    unsafe_wheel_is_refused(&env, pkg, &[]);
}

/// The same name twice: what was checked would not be what lands on disk.
#[test]
fn duplicate_member_is_refused() {
    let env = TestEnv::new();
    let pkg = forbidden_program(&env, "dup-member", "1.0.0").duplicate(
        "dup_member/cli.py",
        format!("def main():\n    {}\n", py_touch(&marker(&env, "evil"))),
    );
    unsafe_wheel_is_refused(&env, pkg, &[]);
}

/// 2 GiB of zeros, about 2 MiB on the wire: over every size limit and ratio.
#[test]
fn zip_bomb_is_refused() {
    let env = TestEnv::new();
    let pkg = forbidden_program(&env, "zip-bomb", "1.0.0").zip_bomb("zip_bomb/zeros.bin", 2 << 30);
    unsafe_wheel_is_refused(&env, pkg, &[]);
    let kept = dir_size(&env.cache());
    assert!(
        kept < 64 << 20,
        "a refused bomb left {kept} bytes in the cache"
    );
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
// Entry points
// ---------------------------------------------------------------------------

/// A project whose only console script is `name = value`, with an `evil`
/// module that leaves a marker when imported.
fn scripted(env: &TestEnv, script: &str, value: &str) -> PyPkg {
    PyPkg::new("ep-inject", "1.0.0")
        .module("ep_inject/__init__.py", "")
        .module(
            "ep_inject/cli.py",
            &format!("def main():\n    {}\n", py_touch(&marker(env, "program"))),
        )
        .module("evil.py", &py_touch(&marker(env, "evil")))
        .console_script(script, value)
}

/// Entry point values that are not `module:attr`: refused, whatever a
/// script template would have made of them.
#[test]
fn entry_point_value_injection_is_refused() {
    let values = [
        INJECTED_ENTRY_POINT,
        "os:system; import evil",
        "ep_inject.cli:main\timport evil",
        "ep_inject.cli:main() or __import__('evil')",
        "__import__('evil'):x",
        "ep_inject.cli",
    ];
    let failures: Vec<String> = values
        .iter()
        .filter_map(|value| {
            let env = TestEnv::new();
            let idx = PyIndex::builder()
                .package(scripted(&env, "ep-inject", value))
                .build();
            let out = idx.uvx(&env, &["ep-inject==1.0.0"]);
            let ok = out.status.code() == Some(5)
                && names(&stderr(&out), "ep-inject")
                && all_markers(&env).iter().all(|m| !m.exists())
                && env.written_outside_cache().is_empty();
            (!ok).then(|| format!("entry point `ep-inject = {value}`:\n{}", describe(&out)))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "expected exit 5 naming `ep-inject`:\n{}",
        failures.join("\n\n")
    );
}

/// Script names that would be written outside the venv's `bin`, beside the
/// script that is launched: every script of the package is judged, not
/// only the one that runs.
#[test]
fn entry_point_name_escaping_is_refused() {
    let failures: Vec<String> = (0..6)
        .filter_map(|case| {
            let env = TestEnv::new();
            let absolute = env.root().join("abs-script");
            let name = match case {
                0 => "../x".to_string(),
                1 => climbing_to(&env.root().join("escaped-script")),
                2 => absolute.to_str().unwrap().to_string(),
                3 => "a/b".to_string(),
                4 => "..".to_string(),
                _ => "x\\..\\..\\y".to_string(),
            };
            let idx = PyIndex::builder()
                .package(
                    scripted(&env, "ep-inject", "ep_inject.cli:main")
                        .console_script(&name, "ep_inject.cli:main"),
                )
                .build();
            let out = idx.uvx(&env, &["ep-inject==1.0.0"]);
            let ok = out.status.code() == Some(5)
                && names(&stderr(&out), "ep-inject")
                && all_markers(&env).iter().all(|m| !m.exists())
                && env.written_outside_cache().is_empty();
            (!ok).then(|| format!("script name `{name}`:\n{}", describe(&out)))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "expected exit 5 naming `ep-inject`:\n{}",
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------
// Hashes: the wheel's RECORD, the index, the lock
// ---------------------------------------------------------------------------

#[test]
fn record_hash_mismatch_is_refused() {
    let env = TestEnv::new();
    let pkg =
        forbidden_program(&env, "record-liar", "1.0.0").record_wrong_hash("record_liar/cli.py");
    let idx = PyIndex::builder().package(pkg).build();
    assert_launch_refused(
        &env,
        &idx,
        &["record-liar==1.0.0"],
        4,
        &["record-liar", "record_liar/cli.py"],
        &[],
    );
}

#[test]
fn record_size_mismatch_is_refused() {
    let env = TestEnv::new();
    let pkg =
        forbidden_program(&env, "record-liar", "1.0.0").record_wrong_size("record_liar/cli.py");
    let idx = PyIndex::builder().package(pkg).build();
    assert_launch_refused(
        &env,
        &idx,
        &["record-liar==1.0.0"],
        4,
        &["record-liar", "record_liar/cli.py"],
        &[],
    );
}

#[test]
fn file_missing_from_record_is_refused() {
    let env = TestEnv::new();
    let pkg = forbidden_program(&env, "record-gap", "1.0.0")
        .module("record_gap/smuggled.py", "")
        .record_omit("record_gap/smuggled.py");
    let idx = PyIndex::builder().package(pkg).build();
    assert_launch_refused(
        &env,
        &idx,
        &["record-gap==1.0.0"],
        4,
        &["record-gap", "record_gap/smuggled.py"],
        &[],
    );
}

#[test]
fn file_listed_in_record_but_absent_is_refused() {
    let env = TestEnv::new();
    let pkg =
        forbidden_program(&env, "record-ghost", "1.0.0").record_phantom("record_ghost/ghost.py");
    let idx = PyIndex::builder().package(pkg).build();
    assert_launch_refused(
        &env,
        &idx,
        &["record-ghost==1.0.0"],
        4,
        &["record-ghost", "record_ghost/ghost.py"],
        &[],
    );
}

#[test]
fn index_hash_mismatch_is_refused() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            forbidden_program(&env, "tampered", "1.0.0")
                .declared_sha256(&sha256_hex(b"not the wheel")),
        )
        .build();
    assert_launch_refused(&env, &idx, &["tampered==1.0.0"], 4, &["tampered"], &[]);
}

#[test]
fn index_hash_mismatch_in_a_dependency_is_refused() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(forbidden_program(&env, "honest-root", "1.0.0").dep("tampered-dep>=2"))
        .package(PyPkg::library("tampered-dep", "2.1.0", "").declared_sha256(&sha256_hex(b"nope")))
        .build();
    assert_launch_refused(
        &env,
        &idx,
        &["honest-root==1.0.0"],
        4,
        &["tampered-dep"],
        &[],
    );
}

/// The same version republished with other bytes (and an index that
/// consistently declares the new hash), after a first launch: with the
/// cache gone and the lockfile kept, the lock's hash wins.
#[test]
fn republished_version_is_refused_by_the_lock() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(PyPkg::program("republished", "1.0.0", "print('original')"))
        .build();
    assert_ran(&idx.uvx(&env, &["republished==1.0.0"]), "original\n");

    idx.publish(forbidden_program(&env, "republished", "1.0.0"));
    std::fs::remove_dir_all(env.cache()).unwrap();
    std::fs::create_dir_all(env.cache()).unwrap();

    let out = assert_launch_refused(
        &env,
        &idx,
        &["republished==1.0.0"],
        4,
        &["republished"],
        &[],
    );
    assert!(
        stderr_mentions(&out, "lock"),
        "the message should point at the lock\n{}",
        describe(&out)
    );
}

#[test]
fn republished_dependency_is_refused_by_the_lock() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            PyPkg::program(
                "locked-root",
                "1.0.0",
                "import locked_dep\nprint(locked_dep.WHO)",
            )
            .dep("locked-dep>=1.0"),
        )
        .package(PyPkg::library("locked-dep", "1.0.0", "WHO = 'original'"))
        .build();
    assert_ran(&idx.uvx(&env, &["locked-root==1.0.0"]), "original\n");

    idx.publish(PyPkg::library(
        "locked-dep",
        "1.0.0",
        &format!("WHO = 'evil'\n{}", py_touch(&marker(&env, "evil"))),
    ));
    std::fs::remove_dir_all(env.cache()).unwrap();
    std::fs::create_dir_all(env.cache()).unwrap();

    let out = assert_launch_refused(&env, &idx, &["locked-root==1.0.0"], 4, &["locked-dep"], &[]);
    assert!(
        stderr_mentions(&out, "lock"),
        "the message should point at the lock\n{}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------
// Where files come from
// ---------------------------------------------------------------------------

/// The page of `victim` lists a wheel of `intruder` too, at a higher
/// version: skipped as pip and uv skip it, and never chosen, for the root
/// or for a dependency range that the intruder's version would satisfy.
#[test]
fn foreign_projects_wheel_on_a_page_is_never_chosen() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            PyPkg::program("host-app", "1.0.0", "import victim\nprint(victim.WHO)")
                .dep("victim>=1"),
        )
        .package(PyPkg::library("victim", "1.0.0", "WHO = 'victim'\n"))
        .package(forbidden_program(&env, "intruder", "9.0.0"))
        .build();
    idx.list_foreign("victim", "intruder", "9.0.0");
    assert_ran(&idx.uvx(&env, &["host-app==1.0.0"]), "victim\n");
    assert_eq!(
        idx.version_file_hits("intruder", "9.0.0"),
        0,
        "{:?}",
        idx.request_lines()
    );
    assert!(!marker(&env, "program").exists());
}

/// Real project pages keep files from before PEP 440: pip reads
/// `cffi-1.0.2-2.tar.gz` as 1.0.2.post2 by splitting on the project's name,
/// and skips `regex-2013-02-16.tar.gz` and `mpmath-all-0.17.tar.gz`. A page
/// with such files is not refused whole.
#[test]
fn old_unparseable_files_on_a_page_are_skipped() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(PyPkg::program("oldpage", "2.0.0", "print('new wheel')"))
        .build();
    for f in [
        "oldpage-1.0.2-2.tar.gz",
        "oldpage-2013-02-16.tar.gz",
        "oldpage-all-0.17.tar.gz",
        "oldpage-0.1.win32.exe",
        "Oldpage-0.9-py2.5.egg",
        "not-even-close.zip",
        "oldpage-3.0-py3-none-any.whl.bak",
    ] {
        idx.list_stray("oldpage", f);
    }
    let out = run(idx
        .safex(&env)
        .env("SAFEX_DEBUG", "1")
        .args(["uvx", "oldpage==2.0.0"]));
    assert_ran(&out, "new wheel\n");
    assert!(
        stderr(&out)
            .contains("debug: the index page of `oldpage` lists `oldpage-2013-02-16.tar.gz`"),
        "{}",
        describe(&out)
    );
    // Without SAFEX_DEBUG nothing is said about them.
    let env = TestEnv::new();
    let out = idx.uvx(&env, &["oldpage==2.0.0"]);
    assert!(!stderr(&out).contains("2013-02-16"), "{}", describe(&out));
}

/// A wheel URL on another host: refused before it is fetched. `localhost`
/// reaches this very index with the right bytes, so the host name alone
/// makes it foreign; nothing listens on 127.0.0.2, so a fetch there would
/// be a network error, not a refusal.
#[test]
fn file_url_on_a_foreign_host_is_refused() {
    for host in ["localhost", "127.0.0.2"] {
        let env = TestEnv::new();
        let idx = PyIndex::builder()
            .package(forbidden_program(&env, "elsewhere", "1.0.0").file_host(host))
            .build();
        eprintln!("host {host}");
        assert_launch_refused(&env, &idx, &["elsewhere==1.0.0"], 3, &["elsewhere"], &[]);
        assert_eq!(
            idx.version_file_hits("elsewhere", "1.0.0"),
            0,
            "{:?}",
            idx.request_lines()
        );
    }
}

#[test]
fn dependency_file_url_on_a_foreign_host_is_refused() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(forbidden_program(&env, "near-root", "1.0.0").dep("far-dep>=1"))
        .package(PyPkg::library("far-dep", "1.0.0", "").file_host("localhost"))
        .build();
    assert_launch_refused(&env, &idx, &["near-root==1.0.0"], 3, &["far-dep"], &[]);
}

/// The largest PyPI index serves its files from a host of its own. A file
/// on another origin is fetched over HTTPS when the page declares its
/// sha256, and verified before it is unpacked.
#[test]
fn file_on_another_https_host_is_fetched_by_its_hash() {
    let env = TestEnv::new();
    let idx = PyIndex::builder().build();
    let front = crate::support::tls::TlsFront::new(idx.addr());
    idx.publish(
        PyPkg::program("hosted", "1.0.0", "print('from the file host')").file_base(&front.base),
    );
    let out = run(idx
        .safex(&env)
        .env("SAFEX_CA_FILE", &front.ca)
        .args(["uvx", "hosted==1.0.0"]));
    assert_ran(&out, "from the file host\n");
    assert!(
        idx.version_file_hits("hosted", "1.0.0") > 0,
        "{:?}",
        idx.request_lines()
    );
}

/// Index credentials go to the index only: never to a file host, and never
/// across a redirect from the index to another origin.
#[test]
fn index_credentials_never_reach_a_file_host() {
    let idx = PyIndex::builder().build();
    let front = crate::support::tls::TlsFront::new(idx.addr());
    idx.publish(PyPkg::program("direct", "1.0.0", "print('direct')").file_base(&front.base));
    idx.publish(PyPkg::program("bounced", "1.0.0", "print('bounced')"));
    let wheel = idx.wheel_name("bounced", "1.0.0");
    let path = format!("/files/{wheel}");
    // The index's own file URL redirects to the file host, as GitHub
    // Packages does to blob storage; the file host serves the same bytes
    // under another path.
    // Once: the file host is this same fixture behind TLS, so the second
    // request for the path (through the front) gets the bytes.
    idx.fault(
        &path,
        Fault::Redirect(format!("{}{path}?signed=1", front.base)),
        1,
    );
    let url = format!("http://fixture-user:s3cr3t@{}/simple/", idx.addr());
    for spec in ["direct==1.0.0", "bounced==1.0.0"] {
        let env = TestEnv::new();
        let out = run(env
            .safex()
            .env("SAFEX_PYPI_INDEX", &url)
            .env("SAFEX_CA_FILE", &front.ca)
            .args(["uvx", spec]));
        assert_code(&out, 0);
    }
    let reqs = idx.requests();
    let pages: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.starts_with("/simple/"))
        .collect();
    assert!(!pages.is_empty());
    assert!(pages.iter().all(|r| r.header("authorization").is_some()));
    let files: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.starts_with("/files/") && !r.path.ends_with(".metadata"))
        .collect();
    let via_front: Vec<_> = files
        .iter()
        .filter(|r| r.target.contains("signed=1") || r.target.contains("direct"))
        .collect();
    assert!(via_front.len() >= 2, "{:?}", idx.request_lines());
    for r in via_front {
        assert_eq!(
            r.header("authorization"),
            None,
            "credential sent to the file host: {}",
            r.target
        );
    }
}

/// `safex uvx` with two configured indexes: `a`, the one safex reads, with
/// its credential, and `b`, an extra index for pip and uv with another
/// credential, given as `extra` says (`PIP_EXTRA_INDEX_URL` or uv's named
/// `UV_INDEX`).
fn with_extra_index(env: &TestEnv, a: &PyIndex, b: &PyIndex, extra: &str) -> Command {
    let mut cmd = env.safex();
    cmd.env(
        "SAFEX_PYPI_INDEX",
        format!("http://alice:pa55-a@{}/simple/", a.addr()),
    );
    let b_url = format!("http://bob:pa55-b@{}/simple/", b.addr());
    match extra {
        "PIP_EXTRA_INDEX_URL" => cmd.env(extra, &b_url),
        _ => cmd.env("UV_INDEX", format!("corp={b_url}")),
    };
    cmd
}

/// `Basic` for `user:pass`, as the fixture sees it.
fn basic_auth(user_pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

/// A page of the configured index that points a file (of the root, or of a
/// dependency) at another configured index's origin: refused before any
/// request reaches that index, so its credential is never sent, and the
/// configured index gets only its own.
#[test]
fn file_on_another_configured_index_is_refused() {
    for extra in ["PIP_EXTRA_INDEX_URL", "UV_INDEX"] {
        for (spec, crossed) in [
            ("crossed==1.0.0", "crossed"),
            ("near==1.0.0", "crossed-dep"),
        ] {
            let env = TestEnv::new();
            let b = PyIndex::builder()
                .package(PyPkg::program("crossed", "1.0.0", "print('from b')"))
                .package(PyPkg::library("crossed-dep", "1.0.0", ""))
                .build();
            let on_b = format!("http://{}", b.addr());
            let a = PyIndex::builder()
                .package(forbidden_program(&env, "crossed", "1.0.0").file_base(&on_b))
                .package(forbidden_program(&env, "near", "1.0.0").dep("crossed-dep==1.0.0"))
                .package(PyPkg::library("crossed-dep", "1.0.0", "").file_base(&on_b))
                .build();
            eprintln!("{extra}: {spec}");
            let out = run(with_extra_index(&env, &a, &b, extra).args(["uvx", spec]));
            let markers = all_markers(&env);
            let markers: Vec<&Path> = markers.iter().map(PathBuf::as_path).collect();
            assert_py_refused(&env, &out, 3, &[crossed], &markers, &[]);
            assert!(
                stderr(&out).contains("another configured registry or index"),
                "{}",
                describe(&out)
            );
            assert!(
                b.requests().is_empty(),
                "safex fetched from the extra index: {:?}",
                b.request_lines()
            );
            let reqs = a.requests();
            assert!(!reqs.is_empty());
            for r in &reqs {
                assert_eq!(
                    r.header("authorization"),
                    Some(basic_auth("alice:pa55-a").as_str()),
                    "{}",
                    r.target
                );
            }
        }
    }
}

/// Dependency confusion: a project on both indexes comes from the one
/// safex reads, whatever the extra index offers (the same version with
/// other code, a newer one); a project only on the extra index is not
/// found, and the hint says why. The extra index is never asked.
#[test]
fn a_project_on_both_indexes_comes_from_the_configured_one() {
    let b = PyIndex::builder()
        .package(PyPkg::program("both", "1.0.0", "print('from b')"))
        .package(PyPkg::program("both", "2.0.0", "print('from b, newer')"))
        .package(PyPkg::program("only-b", "1.0.0", "print('from b')"))
        .package(PyPkg::library("shared-dep", "1.0.0", "WHO = 'b'"))
        .package(PyPkg::library("shared-dep", "9.0.0", "WHO = 'b, newer'"))
        .build();
    let a = PyIndex::builder()
        .package(
            PyPkg::program(
                "both",
                "1.0.0",
                "import shared_dep\nprint('from a', shared_dep.WHO)",
            )
            .dep("shared-dep>=1"),
        )
        .package(PyPkg::library("shared-dep", "1.0.0", "WHO = 'a'"))
        .build();
    for extra in ["PIP_EXTRA_INDEX_URL", "UV_INDEX"] {
        let env = TestEnv::new();
        let out = run(with_extra_index(&env, &a, &b, extra).args(["uvx", "both==1.0.0"]));
        assert_ran(&out, "from a a\n");
        let out = run(with_extra_index(&env, &a, &b, extra).args(["uvx", "only-b==1.0.0"]));
        assert_code(&out, 6);
        assert!(
            stderr(&out).contains("only-b") && stderr(&out).contains("never the extra indexes"),
            "{}",
            describe(&out)
        );
    }
    assert!(
        b.requests().is_empty(),
        "safex asked the extra index: {:?}",
        b.request_lines()
    );
}

/// Plain HTTP to another host, or a file host without a declared hash: the
/// host is then all that vouches for the bytes, so both are refused.
#[test]
fn file_on_another_host_needs_https_and_a_hash() {
    let env = TestEnv::new();
    let idx = PyIndex::builder().build();
    let front = crate::support::tls::TlsFront::new(idx.addr());
    idx.publish(
        PyPkg::program("unhashed", "1.0.0", "print('x')")
            .file_base(&front.base)
            .no_hash(),
    );
    let out = run(idx
        .safex(&env)
        .env("SAFEX_CA_FILE", &front.ca)
        .args(["uvx", "unhashed==1.0.0"]));
    assert_code(&out, 3);
    assert!(
        stderr(&out).contains("no sha256 or sha512 hash"),
        "{}",
        describe(&out)
    );
    assert_eq!(idx.version_file_hits("unhashed", "1.0.0"), 0);
}

/// `registries.file_hosts` narrows where files may come from: `[]` is the
/// registry's own origin only (corporate-strict's form); a listed host is
/// allowed.
#[test]
fn policy_file_hosts_narrows_file_hosts() {
    let idx = PyIndex::builder().build();
    let front = crate::support::tls::TlsFront::new(idx.addr());
    idx.publish(PyPkg::program("hosted", "1.0.0", "print('ok')").file_base(&front.base));
    for (hosts, code) in [("[]", 3), ("[\"localhost\"]", 0)] {
        let env = TestEnv::new();
        let policy = env.root().join("p.toml");
        std::fs::write(&policy, format!("[registries]\nfile_hosts = {hosts}\n")).unwrap();
        idx.clear_log();
        let out = run(idx
            .safex(&env)
            .env("SAFEX_CA_FILE", &front.ca)
            .env("SAFEX_POLICY", &policy)
            .args(["uvx", "hosted==1.0.0"]));
        assert_code(&out, code);
        if code == 3 {
            assert!(
                stderr(&out).contains("registries.file_hosts"),
                "{}",
                describe(&out)
            );
            assert_eq!(idx.version_file_hits("hosted", "1.0.0"), 0);
        }
    }
}

// ---------------------------------------------------------------------------
// What the command line may ask for
// ---------------------------------------------------------------------------

/// Run each `args` and collect the cases that were not refused with `code`
/// naming `name` (and, if `no_requests`, without touching the index).
fn refusal_table(
    idx: &PyIndex,
    cases: &[(Vec<&str>, &str)],
    code: i32,
    no_requests: bool,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (args, name) in cases {
        let env = TestEnv::new();
        idx.clear_log();
        let out = idx.uvx(&env, args);
        eprintln!("{args:?}\n{}", describe(&out));
        let markers = all_markers(&env);
        let markers: Vec<&Path> = markers.iter().map(PathBuf::as_path).collect();
        let mut problems = refusal_problems(&env, &out, code, &[], &markers, &[]);
        if !names(&stderr(&out), name) {
            problems.push(format!("stderr does not name `{name}`"));
        }
        if no_requests && !idx.requests().is_empty() {
            problems.push(format!("asked the index {:?}", idx.request_lines()));
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

/// Ranges, wildcards, `@latest` and bare names are refused, and the hint
/// names the exact current version: the newest final, unyanked one.
#[test]
fn unpinned_specs_are_refused_with_the_exact_version() {
    let env = TestEnv::new();
    let mut b = PyIndex::builder();
    for v in ["1.0.0", "1.1.0", "1.2.0", "1.3.0rc1"] {
        b = b.package(forbidden_program(&env, "pinme", v));
    }
    let idx = b
        .package(forbidden_program(&env, "pinme", "1.4.0").yanked("broken"))
        .build();
    let specs = [
        "pinme",
        "pinme>=1",
        "pinme~=1.0",
        "pinme==1.*",
        "pinme@latest",
        "pinme<2",
        "pinme!=1.0.0",
        "pinme>1.0,<2",
    ];
    let mut cases: Vec<(Vec<&str>, &str)> =
        specs.iter().map(|s| (vec![*s], "pinme==1.2.0")).collect();
    // The hint may keep the extra.
    cases.push((vec!["pinme[extra]>=1"], "==1.2.0"));
    let failures = refusal_table(&idx, &cases, 2, false);
    assert!(
        failures.is_empty(),
        "expected exit 2 with a hint naming `pinme==1.2.0`:\n{}",
        failures.join("\n\n")
    );
    // Unpinned `--from` and `--with` likewise.
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--from", "pinme>=1", "pinme"], "pinme==1.2.0"),
        (vec!["--with", "pinme", "pinme==1.0.0"], "pinme==1.2.0"),
    ];
    let failures = refusal_table(&idx, &cases, 2, false);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let out = idx.uvx(&env, &["pinme>=1"]);
    assert_snapshot!(stable_stderr(&env, &out), @r"
    error: `pinme>=1` is not an exact version: safex launches only exact pins
    hint: pin the exact version: `safex uvx pinme==1.2.0` (current on the index)
    ");
}

/// Code from anywhere but the index, unpinned and unhashed by nature.
#[test]
fn url_git_and_path_specs_are_refused() {
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["git+https://127.0.0.1:1/x.git"],
            "git+https://127.0.0.1:1/x.git",
        ),
        (
            vec!["pinme @ git+https://127.0.0.1:1/x.git"],
            "git+https://127.0.0.1:1/x.git",
        ),
        (
            vec!["http://127.0.0.1:1/pinme-1.0.0-py3-none-any.whl"],
            "http://127.0.0.1:1/pinme-1.0.0-py3-none-any.whl",
        ),
        (
            vec!["pinme @ http://127.0.0.1:1/pinme-1.0.0-py3-none-any.whl"],
            "http://127.0.0.1:1/pinme-1.0.0-py3-none-any.whl",
        ),
        (vec!["file:///tmp/pinme"], "file:///tmp/pinme"),
        (vec!["./dir"], "./dir"),
        (vec!["../dir"], "../dir"),
        (vec!["/abs/dir"], "/abs/dir"),
        (vec!["--from", "./dir", "pinme"], "./dir"),
        (
            vec!["--with", "git+https://127.0.0.1:1/y.git", "pinme==1.0.0"],
            "git+https://127.0.0.1:1/y.git",
        ),
    ];
    let idx = PyIndex::start();
    let mut failures = refusal_table(&idx, &cases, 2, true);
    // A wheel file name is a path to uv; it may also read as a bare name
    // (and be looked up for the hint).
    let wheel_file = "pinme-1.0.0-py3-none-any.whl";
    failures.extend(refusal_table(
        &idx,
        &[(vec![wheel_file], wheel_file)],
        2,
        false,
    ));
    assert!(
        failures.is_empty(),
        "expected exit 2 naming the spec:\n{}",
        failures.join("\n\n")
    );
}

/// Names that would climb out of the index's URL space or the cache, or
/// that PEP 508 does not allow, never reach the index.
#[test]
fn hostile_names_are_refused_without_asking_the_index() {
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["../evil==1.0"], "../evil"),
        (vec!["a/b==1.0"], "a/b"),
        (vec!["-x==1"], "-x"),
        (vec![".."], ".."),
        (vec!["..==1.0"], ".."),
        (vec!["%2e%2e==1.0"], "%2e%2e"),
        (vec!["a%2fb==1.0"], "a%2fb"),
        (vec!["_evil==1.0"], "_evil"),
        (vec!["evil\\x==1.0"], "evil"),
        (vec!["a b==1.0"], "a b"),
        (vec!["--from", "../evil==1.0", "evil"], "../evil"),
    ];
    let idx = PyIndex::start();
    let failures = refusal_table(&idx, &cases, 2, true);
    assert!(
        failures.is_empty(),
        "expected exit 2 naming the name, and no request:\n{}",
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------
// Index faults
// ---------------------------------------------------------------------------

fn fault_index() -> PyIndex {
    PyIndex::builder()
        .package(
            PyPkg::program(
                "flaky",
                "1.0.0",
                "import flaky_dep\nprint(flaky_dep.VERSION)",
            )
            .dep("flaky-dep>=1.0"),
        )
        .package(PyPkg::library("flaky-dep", "1.0.0", ""))
        .build()
}

fn launch_flaky(env: &TestEnv, idx: &PyIndex) -> Output {
    idx.uvx(env, &["flaky==1.0.0"])
}

#[test]
fn index_503_twice_then_ok_is_retried() {
    let env = TestEnv::new();
    let idx = fault_index();
    idx.fault(&page_path("flaky"), Fault::Status(503), 2);
    assert_ran(&launch_flaky(&env, &idx), "1.0.0\n");
    assert!(idx.page_hits("flaky") >= 3, "{:?}", idx.request_lines());
}

#[test]
fn truncated_wheel_once_then_ok_is_retried() {
    let env = TestEnv::new();
    let idx = fault_index();
    let wheel = idx.wheel_name("flaky-dep", "1.0.0");
    idx.fault(&file_path(&wheel), Fault::Truncate, 1);
    assert_ran(&launch_flaky(&env, &idx), "1.0.0\n");
    assert!(idx.file_hits(&wheel) >= 2, "{:?}", idx.request_lines());
}

#[test]
fn connection_reset_once_then_ok_is_retried() {
    let env = TestEnv::new();
    let idx = fault_index();
    idx.fault(&page_path("flaky"), Fault::Reset, 1);
    idx.fault(
        &file_path(&idx.wheel_name("flaky", "1.0.0")),
        Fault::Reset,
        1,
    );
    assert_ran(&launch_flaky(&env, &idx), "1.0.0\n");
}

#[test]
fn permanent_500_is_a_registry_error() {
    let env = TestEnv::new();
    let idx = fault_index();
    idx.fault_always(&page_path("flaky-dep"), Fault::Status(500));
    let out = launch_flaky(&env, &idx);
    assert_py_refused(&env, &out, 6, &["flaky-dep"], &[], &[]);
}

// ---------------------------------------------------------------------------
// Concurrent launches
// ---------------------------------------------------------------------------

fn spawn_launch(idx: &PyIndex, env: &TestEnv, spec: &str) -> std::process::Child {
    let mut cmd: Command = idx.safex(env);
    cmd.args(["uvx", spec])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn safex")
}

/// Two cold launches at once both run, and leave one consistent cache.
#[test]
fn concurrent_cold_launches_both_succeed() {
    let env = TestEnv::new();
    let idx = fault_index();
    let wheel = idx.wheel_name("flaky", "1.0.0");
    idx.fault(
        &file_path(&wheel),
        Fault::SlowFirstByte(Duration::from_secs(1)),
        1,
    );
    let mut a = spawn_launch(&idx, &env, "flaky==1.0.0");
    let mut b = spawn_launch(&idx, &env, "flaky==1.0.0");
    let (a, b) = (
        wait_with_timeout(&mut a, Duration::from_secs(120)),
        wait_with_timeout(&mut b, Duration::from_secs(120)),
    );
    eprintln!("requests: {:?}", idx.request_lines());
    assert_ran(&a, "1.0.0\n");
    assert_ran(&b, "1.0.0\n");
    assert_nothing_written_outside_cache(&env, &[]);
    idx.clear_log();
    assert_ran(
        &run(idx
            .safex(&env)
            .env("SAFEX_OFFLINE", "1")
            .args(["uvx", "flaky==1.0.0"])),
        "1.0.0\n",
    );
}

/// The CA `.npmrc` names is the user's trust for every request safex
/// makes, the PyPI index's files too (one trust store per laptop).
#[test]
fn npmrc_cafile_is_trusted_for_pypi_files_too() {
    let env = TestEnv::new();
    let idx = PyIndex::builder().build();
    let front = crate::support::tls::TlsFront::new(idx.addr());
    idx.publish(PyPkg::program("hostedca", "1.0.0", "print('trusted')").file_base(&front.base));
    let out = run(idx.safex(&env).args(["uvx", "hostedca==1.0.0"]));
    assert!(!out.status.success(), "ran without trusting the CA");
    std::fs::write(
        env.home().join(".npmrc"),
        format!("cafile={}\n", front.ca.display()),
    )
    .unwrap();
    let out = run(idx.safex(&env).args(["uvx", "hostedca==1.0.0"]));
    assert_ran(&out, "trusted\n");
}
