//! The `safex uvx` command line: argument forms, where the index and the
//! interpreter come from, resolution, the venv, offline use and the lockfile,
//! each through the real binary against the in-process simple index
//! (`support/pyfixture.rs`). The last section tests the index itself,
//! against Python's own tools.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::support::env::{TestEnv, stderr, stdout};
use crate::support::fixture::{
    assert_code, assert_no_markers, assert_nothing_written_outside_cache, assert_ran, describe, run,
};
use crate::support::pyfixture::*;

/// An index with `argv-echo`, whose one console script prints its arguments
/// as JSON.
fn echo_index() -> PyIndex {
    PyIndex::builder()
        .package(PyPkg::program("argv-echo", "1.0.0", PY_ECHO_ARGV))
        .build()
}

fn json_line(args: &[&str]) -> String {
    format!("{}\n", serde_json::to_string(args).unwrap())
}

/// A file that exists only if code the test forbids has run.
fn marker(env: &TestEnv, what: &str) -> PathBuf {
    env.root().join(format!("ran-{what}"))
}

/// A program that prints, for each module, `module=VERSION` or
/// `module=missing`.
fn importing(name: &str, version: &str, modules: &[&str]) -> PyPkg {
    let body = format!(
        "import importlib\nfor m in {}:\n    try:\n        print(m + '=' + importlib.import_module(m).VERSION)\n    except ImportError:\n        print(m + '=missing')",
        serde_json::to_string(modules).unwrap()
    );
    PyPkg::program(name, version, &body)
}

fn python3_path() -> PathBuf {
    python3().expect("these tests need python3 on PATH")
}

// ---------------------------------------------------------------------------
// Argument forms
// ---------------------------------------------------------------------------

#[test]
fn uv_tool_run_runs_what_uvx_runs() {
    let env = TestEnv::new();
    let idx = echo_index();
    let want = json_line(&["--flag", "x"]);
    for args in [
        &["uvx", "argv-echo==1.0.0", "--flag", "x"][..],
        &["uv", "tool", "run", "argv-echo==1.0.0", "--flag", "x"],
        &[
            "uv",
            "tool",
            "run",
            "--from",
            "argv-echo==1.0.0",
            "argv-echo",
            "--flag",
            "x",
        ],
    ] {
        assert_ran(&run(idx.safex(&env).args(args)), &want);
    }
    let out = run(idx
        .safex(&env)
        .args(["lock", "uv", "tool", "run", "argv-echo==1.0.0"]));
    assert_code(&out, 0);
    let out = run(idx.safex(&env).args(["uv", "tool", "run", "--help"]));
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("Usage: safex uv tool run "),
        "{}",
        describe(&out)
    );
}

#[test]
fn arguments_after_the_spec_pass_verbatim() {
    let env = TestEnv::new();
    let idx = echo_index();
    assert_ran(
        &idx.uvx(&env, &["argv-echo==1.0.0", "--flag", "x"]),
        &json_line(&["--flag", "x"]),
    );

    // Options that safex itself knows, `--`, spaces and empty strings.
    let tricky = [
        "--",
        "--from",
        "other==1.0",
        "--with",
        "x==1",
        "--python",
        "/nonexistent",
        "--offline",
        "-q",
        "with space",
        "",
    ];
    let mut args = vec!["argv-echo==1.0.0"];
    args.extend(tricky);
    assert_ran(&idx.uvx(&env, &args), &json_line(&tricky));
}

#[test]
fn double_dash_ends_safex_options() {
    let env = TestEnv::new();
    let idx = echo_index();
    assert_ran(
        &idx.uvx(&env, &["--isolated", "--", "argv-echo==1.0.0", "a"]),
        &json_line(&["a"]),
    );
}

#[test]
fn at_version_form_is_accepted() {
    let env = TestEnv::new();
    let idx = echo_index();
    assert_ran(
        &idx.uvx(&env, &["argv-echo@1.0.0", "a"]),
        &json_line(&["a"]),
    );
}

/// Names are PEP 503-normalized for lookups; the script named like the
/// normalized project runs.
#[test]
fn unnormalized_name_is_found() {
    let env = TestEnv::new();
    let idx = echo_index();
    assert_ran(
        &idx.uvx(&env, &["Argv_Echo==1.0.0", "b"]),
        &json_line(&["b"]),
    );
    assert!(
        idx.requests()
            .iter()
            .all(|r| !r.path.starts_with("/simple/") || r.path == page_path("argv-echo")),
        "{:?}",
        idx.request_lines()
    );
}

/// `name[extra]==v` installs what the extra requires; without it, not.
#[test]
fn extra_installs_its_dependency() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            importing("extras-app", "1.0.0", &["fancy_dep"]).extra_dep("fancy", "fancy-dep>=1.0"),
        )
        .package(PyPkg::library("fancy-dep", "1.0.0", ""))
        .build();
    assert_ran(
        &idx.uvx(&env, &["extras-app[fancy]==1.0.0"]),
        "fancy_dep=1.0.0\n",
    );
    assert_ran(
        &idx.uvx(&env, &["extras-app==1.0.0"]),
        "fancy_dep=missing\n",
    );
}

/// `--from pkg==v cmd` runs the console script `cmd` of `pkg`.
#[test]
fn from_option_runs_the_named_command() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            PyPkg::program("multi-tool", "1.0.0", "print('main')")
                .module(
                    "multi_tool/other.py",
                    "import json, sys\n\ndef run():\n    print('other:' + json.dumps(sys.argv[1:], separators=(',', ':')))\n",
                )
                .console_script("othercmd", "multi_tool.other:run"),
        )
        .build();
    assert_ran(
        &idx.uvx(&env, &["--from", "multi-tool==1.0.0", "othercmd", "arg"]),
        "other:[\"arg\"]\n",
    );
    assert_ran(
        &idx.uvx(&env, &["--from=multi-tool==1.0.0", "othercmd"]),
        "other:[]\n",
    );
    assert_ran(&idx.uvx(&env, &["multi-tool==1.0.0"]), "main\n");
}

/// A project whose one console script is named unlike the project is not
/// guessed (uvx refuses it since uv 0.6): the hint names the `--from` form,
/// which runs it. The script is started under its own name (`sys.argv[0]`),
/// as uvx starts it.
#[test]
fn single_script_named_unlike_the_project_is_named_with_from() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            PyPkg::new("oddly-named", "1.0.0")
                .module(
                    "oddly/__init__.py",
                    "import os, sys\ndef go():\n    print('odd', os.path.basename(sys.argv[0]))\n",
                )
                .console_script("odd-cmd", "oddly:go"),
        )
        .build();
    let out = idx.uvx(&env, &["oddly-named==1.0.0"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(stdout(&out).is_empty(), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains("no command named `oddly-named`")
            && err.contains("safex uvx --from oddly-named==1.0.0 odd-cmd"),
        "{err}"
    );
    assert_ran(
        &idx.uvx(&env, &["--from", "oddly-named==1.0.0", "odd-cmd"]),
        "odd odd-cmd\n",
    );
}

/// `--with other==v` adds a pinned package to the environment.
#[test]
fn with_option_adds_a_pinned_package() {
    let env = TestEnv::new();
    let mut b = PyIndex::builder().package(importing("uses-helper", "1.0.0", &["helper"]));
    for v in ["1.0.0", "1.1.0", "1.2.0"] {
        b = b.package(PyPkg::library("helper", v, ""));
    }
    let idx = b.build();
    assert_ran(
        &idx.uvx(&env, &["--with", "helper==1.1.0", "uses-helper==1.0.0"]),
        "helper=1.1.0\n",
    );
    assert_ran(
        &idx.uvx(&env, &["--with=helper==1.0.0", "uses-helper==1.0.0"]),
        "helper=1.0.0\n",
    );
    assert_ran(
        &idx.uvx(
            &env,
            &[
                "--from",
                "uses-helper==1.0.0",
                "--with",
                "helper==1.2.0",
                "uses-helper",
            ],
        ),
        "helper=1.2.0\n",
    );

    // `--with` must be pinned too.
    let env = TestEnv::new();
    let out = idx.uvx(&env, &["--with", "helper>=1", "uses-helper==1.0.0"]);
    assert_py_refused(&env, &out, 2, &["helper"], &[], &[]);
}

/// `--python <path>` uses that interpreter for the venv.
#[test]
fn python_option_takes_an_interpreter_path() {
    let env = TestEnv::new();
    let py = python3_path();
    let idx = PyIndex::builder()
        .package(PyPkg::program(
            "which-python",
            "1.0.0",
            "import sys\nprint('%d.%d' % sys.version_info[:2])\nprint(sys.base_prefix)",
        ))
        .build();
    let expected = python(
        &env.work(),
        &[
            "-c",
            "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.base_prefix)",
        ],
    );
    assert!(expected.status.success());
    let py_str_path = py.to_str().unwrap();
    assert_ran(
        &idx.uvx(&env, &["--python", py_str_path, "which-python==1.0.0"]),
        &stdout(&expected),
    );

    let env = TestEnv::new();
    let out = run(idx
        .safex(&env)
        .env("SAFEX_PYTHON", py_str_path)
        .args(["uvx", "which-python==1.0.0"]));
    assert_ran(&out, &stdout(&expected));
}

/// `--python 3.X` finds `python3.X` (or a `python3` of that version) on PATH.
#[test]
fn python_option_takes_a_version() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(PyPkg::program(
            "which-python",
            "1.0.0",
            "import sys\nprint('%d.%d' % sys.version_info[:2])",
        ))
        .build();
    let version = python(
        &env.work(),
        &["-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
    );
    let version = stdout(&version).trim().to_string();
    assert_ran(
        &idx.uvx(&env, &["--python", &version, "which-python==1.0.0"]),
        &format!("{version}\n"),
    );
}

#[test]
fn missing_python_is_a_runtime_error() {
    let env = TestEnv::new();
    let idx = echo_index();
    let out = idx.uvx(
        &env,
        &["--python", "/nonexistent/python3", "argv-echo==1.0.0"],
    );
    assert_py_refused(&env, &out, 8, &["/nonexistent/python3"], &[], &[]);

    let out = run(idx
        .safex(&env)
        .env("SAFEX_PYTHON", "/nonexistent/python3")
        .args(["uvx", "argv-echo==1.0.0"]));
    assert_py_refused(&env, &out, 8, &["/nonexistent/python3"], &[], &[]);

    // No python3 on PATH at all.
    let out = run(idx
        .safex(&env)
        .env("PATH", env.work())
        .args(["uvx", "argv-echo==1.0.0"]));
    assert_py_refused(&env, &out, 8, &["python"], &[], &[]);
}

/// A root whose Requires-Python no interpreter satisfies: a missing runtime.
#[test]
fn root_requires_python_unsatisfied_is_a_runtime_error() {
    let env = TestEnv::new();
    let ran = marker(&env, "program");
    let idx = PyIndex::builder()
        .package(
            PyPkg::program("from-the-future", "1.0.0", &py_touch(&ran)).requires_python(">=3.99"),
        )
        .build();
    let out = idx.uvx(&env, &["from-the-future==1.0.0"]);
    assert_py_refused(&env, &out, 8, &["from-the-future", "3.99"], &[&ran], &[]);
}

#[test]
fn isolated_and_no_build_are_accepted() {
    let env = TestEnv::new();
    let idx = echo_index();
    assert_ran(
        &idx.uvx(&env, &["--isolated", "--no-build", "argv-echo==1.0.0", "x"]),
        &json_line(&["x"]),
    );
}

#[test]
fn program_exit_status_passes_through() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(PyPkg::program(
            "exits-seven",
            "1.0.0",
            "import sys\nprint('bye', flush=True)\nsys.exit(7)",
        ))
        .build();
    let out = idx.uvx(&env, &["exits-seven==1.0.0"]);
    assert_code(&out, 7);
    assert_eq!(stdout(&out), "bye\n");
}

#[test]
fn unknown_option_is_named() {
    let env = TestEnv::new();
    let idx = echo_index();
    let out = idx.uvx(&env, &["--bogus", "argv-echo==1.0.0"]);
    assert_py_refused(&env, &out, 2, &["--bogus"], &[], &[]);
    assert!(idx.requests().is_empty(), "{:?}", idx.request_lines());
}

// ---------------------------------------------------------------------------
// Where the index comes from
// ---------------------------------------------------------------------------

/// An executable `python3` in the test's root that runs the real one with
/// `vars` set: what its pip sees, and safex does not.
fn python_with(env: &TestEnv, name: &str, vars: &[(&str, &str)]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let real = String::from_utf8(
        std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 runs")
            .stdout,
    )
    .unwrap();
    let sets: String = vars.iter().map(|(k, v)| format!("{k}='{v}' ")).collect();
    let path = env.root().join(name);
    std::fs::write(
        &path,
        format!("#!/bin/sh\n{sets}exec '{}' \"$@\"\n", real.trim()),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// With no index configured for safex, the index is the one the selected
/// interpreter's pip would use (here `PIP_INDEX_URL` set only for that
/// interpreter), said on stderr; a Python without pip gives an error that
/// says what was tried and how to configure one; the policy's
/// `registries.require_configured` keeps today's refusal.
#[test]
fn no_index_configured_uses_the_index_of_the_interpreters_pip() {
    let idx = echo_index();
    let env = TestEnv::new();
    let py = python_with(&env, "py-with-index", &[("PIP_INDEX_URL", &idx.url())]);
    let py = py.to_str().unwrap();
    let out = run(env
        .safex()
        .args(["uvx", "--python", py, "argv-echo==1.0.0", "x"]));
    assert_ran(&out, &json_line(&["x"]));
    let err = stderr(&out);
    assert!(
        err.contains(&idx.url()) && err.contains("pip's configuration"),
        "the index used and where it came from are said\n{err}"
    );
    // Warm: nothing asked, nothing said.
    let out = run(env
        .safex()
        .args(["uvx", "--python", py, "argv-echo==1.0.0", "x"]));
    assert_ran(&out, &json_line(&["x"]));
    assert!(stderr(&out).is_empty(), "{}", describe(&out));

    let env = TestEnv::new();
    let policy = env.root().join("strict.toml");
    std::fs::write(&policy, "[registries]\nrequire_configured = true\n").unwrap();
    let py = python_with(&env, "py-with-index", &[("PIP_INDEX_URL", &idx.url())]);
    let out = run(env.safex().env("SAFEX_POLICY", &policy).args([
        "uvx",
        "--python",
        py.to_str().unwrap(),
        "argv-echo==1.0.0",
    ]));
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("no Python package index is configured")
            && err.contains("require_configured")
            && err.contains("SAFEX_PYPI_INDEX"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // A venv without pip: its pip cannot be asked.
    let env = TestEnv::new();
    let venv = env.root().join("no-pip");
    let made = std::process::Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(made.success(), "python3 -m venv --without-pip failed");
    let out = run(env.safex().args([
        "uvx",
        "--python",
        venv.join("bin/python3").to_str().unwrap(),
        "argv-echo==1.0.0",
    ]));
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("pip could not say")
            && err.contains("--index-url")
            && err.contains("config.toml"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn index_url_and_default_index_flags_configure_the_index_and_beat_the_environment() {
    let idx = echo_index();
    for flag in ["--index-url", "--default-index"] {
        let env = TestEnv::new();
        let out = run(env
            .safex()
            .args(["uvx", flag, &idx.url(), "argv-echo==1.0.0", "x"]));
        assert_ran(&out, &json_line(&["x"]));

        let env = TestEnv::new();
        let out = run(env
            .safex()
            .env("SAFEX_PYPI_INDEX", "http://127.0.0.1:1/simple/")
            .args(["uvx", flag, &idx.url(), "argv-echo==1.0.0", "y"]));
        assert_ran(&out, &json_line(&["y"]));
    }
}

/// Drop-in: where safex has no setting of its own, pip's and uv's are
/// honoured.
#[test]
fn pip_and_uv_index_settings_are_honoured() {
    let idx = echo_index();
    for var in ["PIP_INDEX_URL", "UV_INDEX_URL", "UV_DEFAULT_INDEX"] {
        let env = TestEnv::new();
        let out = run(env
            .safex()
            .env(var, idx.url())
            .args(["uvx", "argv-echo==1.0.0", var]));
        assert_ran(&out, &json_line(&[var]));
    }

    let env = TestEnv::new();
    let dir = env.home().join(".config/pip");
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("pip.conf");
    std::fs::write(&conf, format!("[global]\nindex-url = {}\n", idx.url())).unwrap();
    let out = run(env.safex().args(["uvx", "argv-echo==1.0.0", "conf"]));
    assert_ran(&out, &json_line(&["conf"]));
    assert_nothing_written_outside_cache(&env, &[&conf]);
}

/// Basic auth in the index URL goes to the index, never into a message.
#[test]
fn index_credentials_are_sent_and_never_printed() {
    let idx = echo_index();
    let secret = "s3cr3t-pa55word";
    let url = format!("http://fixture-user:{secret}@{}/simple/", idx.addr());
    let env = TestEnv::new();
    let out = run(env
        .safex()
        .env("SAFEX_PYPI_INDEX", &url)
        .args(["uvx", "argv-echo==1.0.0"]));
    assert_ran(&out, "[]\n");
    assert!(!stderr(&out).contains(secret), "{}", describe(&out));
    use base64::Engine as _;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("fixture-user:{secret}"))
    );
    let reqs = idx.requests();
    assert!(!reqs.is_empty());
    for r in &reqs {
        assert_eq!(
            r.header("authorization"),
            Some(&*expected),
            "{} {}",
            r.method,
            r.target
        );
    }

    let env = TestEnv::new();
    idx.fault_always(&page_path("gone"), Fault::Status(500));
    let out = run(env
        .safex()
        .env("SAFEX_PYPI_INDEX", &url)
        .args(["uvx", "gone==1.0.0"]));
    assert_code(&out, 6);
    assert!(
        !stderr(&out).contains(secret),
        "password printed\n{}",
        describe(&out)
    );
}

/// PEP 691 JSON pages and PEP 658 metadata files, when offered, work; so
/// do links relative to the page.
#[test]
fn json_metadata_and_relative_link_indexes_work() {
    let build = |json: bool, meta: bool, relative: bool| {
        PyIndex::builder()
            .json(json)
            .metadata_files(meta)
            .relative_urls(relative)
            .package(importing("shaped", "1.0.0", &["shaped_dep"]).dep("shaped-dep>=1"))
            .package(PyPkg::library("shaped-dep", "1.2.0", ""))
            .build()
    };
    for (json, meta, relative) in [
        (true, false, false),
        (false, true, false),
        (true, true, false),
        (false, false, true),
        (true, true, true),
    ] {
        let env = TestEnv::new();
        let idx = build(json, meta, relative);
        let out = idx.uvx(&env, &["shaped==1.0.0"]);
        eprintln!("json={json} metadata={meta} relative={relative}");
        assert_ran(&out, "shaped_dep=1.2.0\n");
    }
}

// ---------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------

/// A range takes the highest final version; a pre-release above it is not
/// taken.
#[test]
fn dependency_range_picks_the_highest_final_version() {
    let env = TestEnv::new();
    let mut b = PyIndex::builder()
        .package(importing("ranged-app", "1.0.0", &["ranged_lib"]).dep("ranged-lib>=1.0,<3"));
    for v in ["1.0.0", "1.5.0", "2.0.0", "2.1.0rc1", "3.0.0"] {
        b = b.package(PyPkg::library("ranged-lib", v, ""));
    }
    let idx = b.build();
    assert_ran(&idx.uvx(&env, &["ranged-app==1.0.0"]), "ranged_lib=2.0.0\n");
}

/// When only a pre-release satisfies the range (the project has final
/// releases, none of them in range), it is used, as pip's `packaging` does.
#[test]
fn prerelease_is_used_when_it_is_the_only_fit() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(importing("pre-app", "1.0.0", &["pre_lib"]).dep("pre-lib>=1.5"))
        .package(PyPkg::library("pre-lib", "1.0.0", ""))
        .package(PyPkg::library("pre-lib", "2.0.0b1", ""))
        .build();
    assert_ran(&idx.uvx(&env, &["pre-app==1.0.0"]), "pre_lib=2.0.0b1\n");
}

/// A project that has only pre-releases: the newest in range is used.
#[test]
fn prerelease_is_used_when_a_project_has_nothing_else() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(importing("beta-app", "1.0.0", &["beta_only"]).dep("beta-only>=1.0"))
        .package(PyPkg::library("beta-only", "1.1.0rc1", ""))
        .package(PyPkg::library("beta-only", "1.1.0rc2", ""))
        .build();
    assert_ran(&idx.uvx(&env, &["beta-app==1.0.0"]), "beta_only=1.1.0rc2\n");
}

/// A dependency whose marker is false here is neither installed nor needed.
#[test]
fn marker_excluded_dependency_is_not_installed() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            importing("marker-app", "1.0.0", &["win_only", "everywhere"])
                .dep("win-only>=1.0; sys_platform == \"win32\"")
                .dep("everywhere>=1.0; python_version >= \"3\""),
        )
        .package(PyPkg::library("win-only", "1.0.0", ""))
        .package(PyPkg::library("everywhere", "1.0.0", ""))
        .build();
    assert_ran(
        &idx.uvx(&env, &["marker-app==1.0.0"]),
        "win_only=missing\neverywhere=1.0.0\n",
    );
    assert_eq!(
        idx.version_file_hits("win-only", "1.0.0"),
        0,
        "{:?}",
        idx.request_lines()
    );
}

/// A dependency version whose Requires-Python excludes this interpreter is
/// skipped for an older one that fits.
#[test]
fn requires_python_excludes_a_too_new_dependency_version() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(importing("rp-app", "1.0.0", &["rp_lib"]).dep("rp-lib>=1.0"))
        .package(PyPkg::library("rp-lib", "1.0.0", "").requires_python(">=3.6"))
        .package(PyPkg::library("rp-lib", "2.0.0", "").requires_python(">=3.99"))
        .build();
    assert_ran(&idx.uvx(&env, &["rp-app==1.0.0"]), "rp_lib=1.0.0\n");
    assert_eq!(
        idx.version_file_hits("rp-lib", "2.0.0"),
        0,
        "{:?}",
        idx.request_lines()
    );
}

/// Requires-Python in the wheel's METADATA only (the index's link does not
/// say it) still excludes the version.
#[test]
fn requires_python_in_metadata_only_excludes_the_version() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(importing("rp-app", "1.0.0", &["rp_lib"]).dep("rp-lib>=1.0"))
        .package(PyPkg::library("rp-lib", "1.0.0", ""))
        .package(
            PyPkg::library("rp-lib", "2.0.0", "")
                .requires_python(">=3.99")
                .link_requires_python(">=3"),
        )
        .build();
    assert_ran(&idx.uvx(&env, &["rp-app==1.0.0"]), "rp_lib=1.0.0\n");
}

/// PEP 592: a yanked version is not picked for a range.
#[test]
fn yanked_version_is_not_picked_for_a_range() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(importing("yank-app", "1.0.0", &["yank_lib"]).dep("yank-lib>=1.0"))
        .package(PyPkg::library("yank-lib", "1.0.0", ""))
        .package(PyPkg::library("yank-lib", "1.1.0", "").yanked("broken build"))
        .build();
    assert_ran(&idx.uvx(&env, &["yank-app==1.0.0"]), "yank_lib=1.0.0\n");
}

/// `a` needs `c<2`, `b` needs `c>=2`: no solution, and the message says
/// which package could not be satisfied.
#[test]
fn conflict_is_a_registry_error_naming_the_package() {
    let env = TestEnv::new();
    let ran = marker(&env, "program");
    let idx = PyIndex::builder()
        .package(
            PyPkg::program("conflicted", "1.0.0", &py_touch(&ran))
                .dep("a-side>=1")
                .dep("b-side>=1"),
        )
        .package(PyPkg::library("a-side", "1.0.0", "").dep("c-lib<2"))
        .package(PyPkg::library("b-side", "1.0.0", "").dep("c-lib>=2"))
        .package(PyPkg::library("c-lib", "1.0.0", ""))
        .package(PyPkg::library("c-lib", "2.0.0", ""))
        .build();
    let out = idx.uvx(&env, &["conflicted==1.0.0"]);
    assert_py_refused(&env, &out, 6, &["c-lib"], &[&ran], &[]);
}

#[test]
fn unknown_project_or_version_is_a_registry_error() {
    let env = TestEnv::new();
    let idx = echo_index();
    let out = idx.uvx(&env, &["no-such-project==1.0.0"]);
    assert_py_refused(&env, &out, 6, &["no-such-project"], &[], &[]);
    let out = idx.uvx(&env, &["argv-echo==9.9.9"]);
    assert_py_refused(&env, &out, 6, &["argv-echo", "9.9.9"], &[], &[]);
}

// ---------------------------------------------------------------------------
// The environment
// ---------------------------------------------------------------------------

/// The program runs in a real venv inside the cache: `sys.prefix` is under
/// the cache, `sys.executable` under `sys.prefix`, and it is not the base
/// interpreter's prefix.
#[test]
fn environment_is_a_real_venv_in_the_cache() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(PyPkg::program(
            "where-am-i",
            "1.0.0",
            "import sys\nprint(sys.executable)\nprint(sys.prefix)\nprint(sys.base_prefix)",
        ))
        .build();
    let out = idx.uvx(&env, &["where-am-i==1.0.0"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let [executable, prefix, base] = lines[..] else {
        panic!("unexpected output\n{}", describe(&out));
    };
    let canon = |p: &str| {
        Path::new(p)
            .canonicalize()
            .unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    let cache = env.cache().canonicalize().unwrap();
    assert!(
        canon(prefix).starts_with(&cache),
        "sys.prefix {prefix} is not under the cache {}",
        cache.display()
    );
    assert!(
        Path::new(executable).starts_with(prefix),
        "sys.executable {executable} is not under sys.prefix {prefix}"
    );
    assert_ne!(prefix, base, "not a venv");
    assert!(
        Path::new(prefix).join("pyvenv.cfg").is_file(),
        "no pyvenv.cfg in {prefix}"
    );
    assert_nothing_written_outside_cache(&env, &[]);
}

/// The program can start itself again with `sys.executable` and import its
/// own package (servers that spawn workers do).
#[test]
fn sys_executable_can_import_the_package() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(PyPkg::program(
            "self-spawner",
            "1.0.0",
            "import subprocess, sys\nout = subprocess.run([sys.executable, '-c', 'import self_spawner; print(\"child ok\")'], capture_output=True, text=True)\nprint(out.stdout.strip() or out.stderr)",
        ))
        .build();
    assert_ran(&idx.uvx(&env, &["self-spawner==1.0.0"]), "child ok\n");
}

// ---------------------------------------------------------------------------
// Offline and warm launches
// ---------------------------------------------------------------------------

#[test]
fn offline_with_an_empty_cache_is_a_registry_error() {
    let env = TestEnv::new();
    let idx = echo_index();
    let out = idx.uvx(&env, &["--offline", "argv-echo==1.0.0"]);
    assert_py_refused(&env, &out, 6, &["argv-echo"], &[], &[]);
    let err = stderr(&out).to_lowercase();
    assert!(
        err.contains("offline") || err.contains("cache"),
        "{}",
        describe(&out)
    );
    assert!(
        idx.requests().is_empty(),
        "offline, yet: {:?}",
        idx.request_lines()
    );

    let out = run(idx
        .safex(&env)
        .env("SAFEX_OFFLINE", "1")
        .args(["uvx", "argv-echo==1.0.0"]));
    assert_py_refused(&env, &out, 6, &["argv-echo"], &[], &[]);
    assert!(
        idx.requests().is_empty(),
        "offline, yet: {:?}",
        idx.request_lines()
    );
}

/// A program with a dependency, launched once.
fn warmed_up(env: &TestEnv) -> PyIndex {
    let idx = PyIndex::builder()
        .package(importing("warm-app", "1.0.0", &["warm_dep"]).dep("warm-dep>=1.0"))
        .package(PyPkg::library("warm-dep", "1.0.0", ""))
        .build();
    assert_ran(&idx.uvx(env, &["warm-app==1.0.0"]), "warm_dep=1.0.0\n");
    idx.clear_log();
    idx
}

#[test]
fn warm_launch_makes_no_requests() {
    let env = TestEnv::new();
    let idx = warmed_up(&env);
    assert_ran(&idx.uvx(&env, &["warm-app==1.0.0"]), "warm_dep=1.0.0\n");
    assert!(
        idx.requests().is_empty(),
        "a warm launch asked {:?}",
        idx.request_lines()
    );
}

#[test]
fn offline_after_warm_up_runs_without_requests() {
    let env = TestEnv::new();
    let idx = warmed_up(&env);
    let out = run(idx
        .safex(&env)
        .env("SAFEX_OFFLINE", "1")
        .args(["uvx", "warm-app==1.0.0"]));
    assert_ran(&out, "warm_dep=1.0.0\n");
    assert_ran(
        &idx.uvx(&env, &["--offline", "warm-app==1.0.0"]),
        "warm_dep=1.0.0\n",
    );
    assert!(
        idx.requests().is_empty(),
        "offline, yet: {:?}",
        idx.request_lines()
    );
}

// ---------------------------------------------------------------------------
// The lockfile
// ---------------------------------------------------------------------------

/// `lock-me` depends on `lock-dep`; running either, or building either,
/// leaves a marker.
fn lockable(env: &TestEnv) -> PyIndex {
    let ran = marker(env, "program");
    PyIndex::builder()
        .package(
            PyPkg::program("lock-me", "1.0.0", &py_touch(&ran))
                .dep("lock-dep>=1.0")
                .with_build_backend(&ran),
        )
        .package(PyPkg::library("lock-dep", "1.4.0", &py_touch(&ran)).setup_py(&ran))
        .build()
}

#[test]
fn lock_prints_the_tree_and_runs_nothing() {
    let env = TestEnv::new();
    let idx = lockable(&env);
    let out = idx.lock_uvx(&env, &["lock-me==1.0.0"]);
    assert_code(&out, 0);
    let tree = stdout(&out);
    for needle in ["lock-me", "1.0.0", "lock-dep", "1.4.0"] {
        assert!(
            tree.contains(needle),
            "the tree lacks `{needle}`\n{}",
            describe(&out)
        );
    }
    assert_no_markers(&[&marker(&env, "program")]);
    assert_nothing_written_outside_cache(&env, &[]);

    let lock = std::fs::read_to_string(env.lockfile()).expect("lockfile written");
    for needle in [
        "lock-me",
        "lock-dep",
        &idx.wheel_sha256("lock-me", "1.0.0"),
        &idx.wheel_sha256("lock-dep", "1.4.0"),
    ] {
        assert!(lock.contains(needle), "lockfile lacks `{needle}`:\n{lock}");
    }
    assert!(
        !lock.contains("127.0.0.1"),
        "no index URL in the lockfile:\n{lock}"
    );

    // What was locked launches under `frozen` (and runs, this time).
    let out = run(idx
        .safex(&env)
        .env("SAFEX_LOCK_MODE", "frozen")
        .args(["uvx", "lock-me==1.0.0"]));
    assert_code(&out, 0);
    assert!(marker(&env, "program").exists(), "{}", describe(&out));
}

/// Every wheel of a version that may be chosen on some platform is recorded,
/// as uv.lock does.
#[test]
fn lock_records_every_platform_wheel() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            PyPkg::program("multi-plat", "1.0.0", "print('ok')")
                .also_wheel_tags("py3-none-win_amd64"),
        )
        .build();
    let out = idx.lock_uvx(&env, &["multi-plat==1.0.0"]);
    assert_code(&out, 0);
    let lock = std::fs::read_to_string(env.lockfile()).expect("lockfile written");
    for f in idx.filenames("multi-plat", "1.0.0") {
        let sha = sha256_hex(&idx.file_bytes(&f));
        assert!(lock.contains(&sha), "lockfile lacks {f} ({sha}):\n{lock}");
    }
    assert_ran(&idx.uvx(&env, &["multi-plat==1.0.0"]), "ok\n");
}

#[test]
fn frozen_lock_without_an_entry_is_refused() {
    let env = TestEnv::new();
    let idx = echo_index();
    let out = run(idx
        .safex(&env)
        .env("SAFEX_LOCK_MODE", "frozen")
        .args(["uvx", "argv-echo==1.0.0"]));
    assert_py_refused(&env, &out, 3, &["argv-echo"], &[], &[]);
    assert_eq!(
        idx.version_file_hits("argv-echo", "1.0.0"),
        0,
        "{:?}",
        idx.request_lines()
    );

    let config = env.root().join("config.toml");
    std::fs::write(&config, "lock_mode = \"frozen\"\n").unwrap();
    let out = idx.uvx(&env, &["argv-echo==1.0.0"]);
    assert_py_refused(&env, &out, 3, &["argv-echo"], &[], &[&config]);
}

/// An index that gains a newer dependency version after the root was
/// locked.
fn drifting(env: &TestEnv) -> PyIndex {
    let idx = PyIndex::builder()
        .package(importing("locked-app", "1.0.0", &["drift"]).dep("drift>=1.0"))
        .package(PyPkg::library("drift", "1.0.0", ""))
        .build();
    assert_ran(&idx.uvx(env, &["locked-app==1.0.0"]), "drift=1.0.0\n");
    idx.publish(PyPkg::library("drift", "1.1.0", ""));
    idx.clear_log();
    idx
}

#[test]
fn locked_root_does_not_float_when_the_index_gains_a_newer_dependency() {
    let env = TestEnv::new();
    let idx = drifting(&env);
    assert_ran(&idx.uvx(&env, &["locked-app==1.0.0"]), "drift=1.0.0\n");
    assert!(
        idx.requests().is_empty(),
        "re-resolved: {:?}",
        idx.request_lines()
    );
}

#[test]
fn locked_root_with_a_cold_cache_keeps_its_locked_versions() {
    let env = TestEnv::new();
    let idx = drifting(&env);
    std::fs::remove_dir_all(env.cache()).unwrap();
    assert_ran(&idx.uvx(&env, &["locked-app==1.0.0"]), "drift=1.0.0\n");
    assert_eq!(
        idx.version_file_hits("drift", "1.1.0"),
        0,
        "{:?}",
        idx.request_lines()
    );
}

// ---------------------------------------------------------------------------
// The fixture index itself
// ---------------------------------------------------------------------------

/// One `<a>` of a simple page: its attributes (unescaped) and text.
#[derive(Debug)]
struct Anchor {
    attrs: Vec<(String, String)>,
    text: String,
}

impl Anchor {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The anchors of an HTML page (enough HTML for what the fixture writes).
fn anchors(html: &str) -> Vec<Anchor> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<a ") {
        rest = &rest[start + 3..];
        let end = rest.find('>').expect("unterminated tag");
        let mut attrs = Vec::new();
        let mut a = &rest[..end];
        while let Some(eq) = a.find("=\"") {
            let name = a[..eq].trim().to_string();
            let close = a[eq + 2..].find('"').expect("unterminated attribute");
            attrs.push((name, unescape(&a[eq + 2..eq + 2 + close])));
            a = &a[eq + 2 + close + 1..];
        }
        rest = &rest[end + 1..];
        let text_end = rest.find("</a>").expect("no </a>");
        out.push(Anchor {
            attrs,
            text: unescape(&rest[..text_end]),
        });
        rest = &rest[text_end..];
    }
    out
}

/// `http://127.0.0.1:PORT/files/x#sha256=h` → (`/files/x`, `h`).
fn split_href(idx: &PyIndex, href: &str) -> (String, Option<String>) {
    let (url, frag) = match href.split_once('#') {
        Some((u, f)) => (u, Some(f)),
        None => (href, None),
    };
    let target = url
        .strip_prefix(&format!("http://{}", idx.addr()))
        .unwrap_or(url)
        .to_string();
    let sha = frag
        .and_then(|f| f.strip_prefix("sha256="))
        .map(str::to_string);
    (target, sha)
}

fn zip_of(bytes: &[u8]) -> zip::ZipArchive<std::io::Cursor<&[u8]>> {
    zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip")
}

fn member(bytes: &[u8], name: &str) -> Vec<u8> {
    let mut z = zip_of(bytes);
    let mut f = z.by_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut out = Vec::new();
    f.read_to_end(&mut out).unwrap();
    out
}

/// Check a wheel's RECORD against its members: every member but RECORD is
/// listed once with its true hash and size. Returns the problems found.
fn record_problems(wheel: &[u8], record_path: &str) -> Vec<String> {
    let record = String::from_utf8(member(wheel, record_path)).unwrap();
    let mut z = zip_of(wheel);
    let mut problems = Vec::new();
    let mut listed = Vec::new();
    for line in record.lines() {
        let parts: Vec<&str> = line.split(',').collect();
        let [path, hash, size] = parts[..] else {
            problems.push(format!("bad line {line:?}"));
            continue;
        };
        listed.push(path.to_string());
        if path == record_path {
            if !hash.is_empty() || !size.is_empty() {
                problems.push(format!("RECORD lists its own hash: {line}"));
            }
            continue;
        }
        let Ok(mut f) = z.by_name(path) else {
            problems.push(format!("{path} listed but absent"));
            continue;
        };
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        if record_hash(&data) != hash {
            problems.push(format!("{path}: hash differs"));
        }
        if data.len().to_string() != size {
            problems.push(format!("{path}: size differs"));
        }
    }
    for i in 0..z.len() {
        let name = z.by_index_raw(i).unwrap().name().unwrap().to_string();
        if !listed.contains(&name) {
            problems.push(format!("{name} missing from RECORD"));
        }
    }
    problems
}

#[test]
fn fixture_serves_a_page_and_a_wheel_whose_sha256_matches() {
    let idx = PyIndex::builder()
        .package(
            PyPkg::program("Hello.World", "1.0.0", PY_ECHO_ARGV)
                .dep("dep-a>=1.0")
                .dep("dep-b; sys_platform == \"win32\"")
                .requires_python(">=3.8,<4")
                .sdist(),
        )
        .package(PyPkg::program("hello-world", "1.1.0", PY_ECHO_ARGV).yanked("bad \"build\""))
        .build();

    let r = idx.get("/simple/hello-world/", None).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let html = String::from_utf8(r.body).unwrap();
    assert!(
        html.contains("data-requires-python=\"&gt;=3.8,&lt;4\""),
        "escaped attribute:\n{html}"
    );
    let links = anchors(&html);
    let names: Vec<&str> = links.iter().map(|a| a.text.as_str()).collect();
    assert_eq!(
        names,
        [
            "hello_world-1.0.0-py3-none-any.whl",
            "hello_world-1.0.0.tar.gz",
            "hello_world-1.1.0-py3-none-any.whl"
        ]
    );
    assert_eq!(links[0].attr("data-requires-python"), Some(">=3.8,<4"));
    assert_eq!(links[0].attr("data-yanked"), None);
    assert_eq!(links[2].attr("data-yanked"), Some("bad \"build\""));
    assert_eq!(links[0].attr("data-dist-info-metadata"), None);

    for a in &links {
        let (target, sha) = split_href(&idx, a.attr("href").unwrap());
        assert_eq!(target, file_path(&a.text));
        let r = idx.get(&target, None).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some(&*r.body.len().to_string()));
        assert_eq!(sha.as_deref(), Some(&*sha256_hex(&r.body)), "{}", a.text);
    }

    let wheel = idx.wheel_bytes("hello-world", "1.0.0");
    let dist_info = "hello_world-1.0.0.dist-info";
    let metadata = String::from_utf8(member(&wheel, &format!("{dist_info}/METADATA"))).unwrap();
    for line in [
        "Metadata-Version: 2.1",
        "Name: Hello.World",
        "Version: 1.0.0",
        "Requires-Python: >=3.8,<4",
        "Requires-Dist: dep-a>=1.0",
        "Requires-Dist: dep-b; sys_platform == \"win32\"",
    ] {
        assert!(metadata.lines().any(|l| l == line), "{line}\n{metadata}");
    }
    let wheel_file = String::from_utf8(member(&wheel, &format!("{dist_info}/WHEEL"))).unwrap();
    assert!(
        wheel_file.contains("Wheel-Version: 1.0\n") && wheel_file.contains("Tag: py3-none-any\n")
    );
    let eps = String::from_utf8(member(&wheel, &format!("{dist_info}/entry_points.txt"))).unwrap();
    assert_eq!(
        eps,
        "[console_scripts]\nhello-world = hello_world.cli:main\n\n"
    );
    let problems = record_problems(&wheel, &format!("{dist_info}/RECORD"));
    assert!(problems.is_empty(), "{problems:#?}");

    // Unnormalized names and a missing slash redirect; unknown is 404.
    for target in [
        "/simple/Hello.World/",
        "/simple/hello_world/",
        "/simple/hello-world",
    ] {
        let r = idx.get(target, None).unwrap();
        assert_eq!(r.status, 301, "{target}");
        assert_eq!(r.header("location"), Some("/simple/hello-world/"));
    }
    assert_eq!(idx.get("/simple/nope/", None).unwrap().status, 404);
    assert_eq!(idx.get("/files/nope.whl", None).unwrap().status, 404);
    let root = String::from_utf8(idx.get("/simple/", None).unwrap().body).unwrap();
    assert!(root.contains("/simple/hello-world/"), "{root}");
}

#[test]
fn fixture_json_page_follows_accept_and_offers_metadata_files() {
    let idx = PyIndex::builder()
        .json(true)
        .metadata_files(true)
        .package(
            PyPkg::program("jsonic", "2.0.0", "")
                .requires_python(">=3.8")
                .sdist(),
        )
        .package(
            PyPkg::program("jsonic", "2.1.0", "")
                .yanked("oops")
                .metadata_file(false),
        )
        .build();
    let pip_accept = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
    let r = idx.get("/simple/jsonic/", Some(pip_accept)).unwrap();
    assert_eq!(r.header("content-type"), Some(JSON_TYPE));
    let doc: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(doc["meta"]["api-version"], "1.1");
    assert_eq!(doc["name"], "jsonic");
    assert_eq!(doc["versions"], serde_json::json!(["2.0.0", "2.1.0"]));
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    let wheel = &files[0];
    assert_eq!(wheel["filename"], "jsonic-2.0.0-py3-none-any.whl");
    assert_eq!(wheel["requires-python"], ">=3.8");
    assert_eq!(wheel["yanked"], false);
    let url = wheel["url"].as_str().unwrap();
    let (target, _) = split_href(&idx, url);
    let bytes = idx.get(&target, None).unwrap().body;
    assert_eq!(wheel["hashes"]["sha256"], sha256_hex(&bytes).as_str());
    let meta_sha = wheel["core-metadata"]["sha256"].as_str().unwrap();
    assert_eq!(wheel["dist-info-metadata"]["sha256"], meta_sha);
    let meta = idx.get(&format!("{target}.metadata"), None).unwrap();
    assert_eq!(meta.status, 200);
    assert_eq!(sha256_hex(&meta.body), meta_sha);
    assert_eq!(
        meta.body,
        member(&bytes, "jsonic-2.0.0.dist-info/METADATA"),
        "the metadata file is the wheel's METADATA"
    );
    assert_eq!(files[1]["core-metadata"], false, "no metadata for sdists");
    assert_eq!(files[2]["yanked"], "oops");
    assert_eq!(files[2]["core-metadata"], false);
    let no_meta = idx
        .get("/files/jsonic-2.1.0-py3-none-any.whl.metadata", None)
        .unwrap();
    assert_eq!(no_meta.status, 404);

    // HTML for HTML-preferring, wildcard and absent Accept headers.
    for accept in [
        None,
        Some("text/html"),
        Some("*/*"),
        Some("application/vnd.pypi.simple.v1+json;q=0.1, text/html"),
    ] {
        let r = idx.get("/simple/jsonic/", accept).unwrap();
        assert!(
            r.header("content-type").unwrap().starts_with("text/html"),
            "{accept:?}"
        );
        let html = String::from_utf8(r.body).unwrap();
        let links = anchors(&html);
        assert_eq!(
            links[0].attr("data-dist-info-metadata"),
            Some(&*format!("sha256={meta_sha}"))
        );
        assert_eq!(
            links[0].attr("data-core-metadata"),
            Some(&*format!("sha256={meta_sha}"))
        );
        assert_eq!(links[2].attr("data-core-metadata"), None);
    }

    // An index built without JSON answers HTML even to a JSON-only client.
    let html_only = PyIndex::builder()
        .package(PyPkg::program("jsonic", "2.0.0", ""))
        .build();
    let r = html_only.get("/simple/jsonic/", Some(JSON_TYPE)).unwrap();
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
}

/// pip accepts the pages and wheels: it downloads by hash from the HTML and
/// the JSON page (with and without PEP 658 metadata), installs the wheel,
/// and its console script runs. It refuses a wrong declared hash.
#[test]
fn fixture_pages_and_wheels_are_accepted_by_pip() {
    let home = tempfile::tempdir().unwrap();
    let py = python3_path();
    for (json, meta) in [(false, false), (true, false), (false, true), (true, true)] {
        let idx = PyIndex::builder()
            .json(json)
            .metadata_files(meta)
            .package(
                PyPkg::program("pip-ok", "1.0.0", PY_ECHO_ARGV)
                    .dep("other-thing>=1")
                    .sdist(),
            )
            .package(PyPkg::program("pip-ok", "1.1.0", PY_ECHO_ARGV).requires_python(">=3.99"))
            .build();
        let dl = tempfile::tempdir().unwrap();
        let out = pip(
            home.path(),
            &[
                "download",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--index-url",
                &idx.url(),
                "pip-ok==1.0.0",
                "-d",
                dl.path().to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "json={json} meta={meta}\n{}",
            describe(&out)
        );
        let wheel = wheel_filename("pip-ok", "1.0.0", "py3-none-any");
        let got = std::fs::read(dl.path().join(&wheel)).expect("downloaded wheel");
        assert_eq!(got, idx.wheel_bytes("pip-ok", "1.0.0"));
        let reqs = idx.requests();
        let page = reqs
            .iter()
            .find(|r| r.path == page_path("pip-ok"))
            .expect("pip asked for the page");
        assert!(
            page.header("accept").unwrap_or("").contains(JSON_TYPE),
            "pip 23+ asks for JSON: {:?}",
            page.headers
        );
        if meta {
            assert!(
                idx.hits(&format!("{}.metadata", file_path(&wheel))) >= 1,
                "pip used the PEP 658 metadata file: {:?}",
                idx.request_lines()
            );
        }

        // Without a pin, pip skips 1.1.0 for its Requires-Python.
        let dl2 = tempfile::tempdir().unwrap();
        let out = pip(
            home.path(),
            &[
                "download",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--index-url",
                &idx.url(),
                "pip-ok",
                "-d",
                dl2.path().to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{}", describe(&out));
        assert!(dl2.path().join(&wheel).is_file(), "{}", describe(&out));

        // pip installs it, and the console script runs.
        let target = tempfile::tempdir().unwrap();
        let out = pip(
            home.path(),
            &[
                "install",
                "--no-deps",
                "--no-index",
                "--target",
                target.path().to_str().unwrap(),
                dl.path().join(&wheel).to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{}", describe(&out));
        let script = target.path().join("bin/pip-ok");
        let out = run(std::process::Command::new(&py)
            .arg(&script)
            .args(["--a", "b c"])
            .env_clear()
            .env("PYTHONPATH", target.path())
            .env("PYTHONDONTWRITEBYTECODE", "1"));
        assert_eq!(
            stdout(&out),
            json_line(&["--a", "b c"]),
            "{}",
            describe(&out)
        );
    }

    // A wrong declared hash makes pip refuse.
    let idx = PyIndex::builder()
        .package(PyPkg::program("pip-bad", "1.0.0", "").declared_sha256(&sha256_hex(b"other")))
        .build();
    let dl = tempfile::tempdir().unwrap();
    let out = pip(
        home.path(),
        &[
            "download",
            "--no-deps",
            "--index-url",
            &idx.url(),
            "pip-bad==1.0.0",
            "-d",
            dl.path().to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(stderr(&out).contains("HASHES"), "{}", describe(&out));
}

#[test]
fn fixture_writes_hostile_members_verbatim() {
    let home = tempfile::tempdir().unwrap();
    let pkg = PyPkg::program("hostile", "1.0.0", "")
        .raw_member("../up", "up")
        .raw_member("/abs/x", "abs")
        .raw_member("C:/drive", "drive")
        .symlink("hostile/link", "/etc")
        .duplicate("hostile/cli.py", "print('second')")
        .data("scripts/tool", "#!python\nprint(1)\n")
        .pth("evil.pth", "import os; pass\n")
        .zip_bomb("hostile/zeros.bin", 1 << 30)
        .file_mode("hostile/run.sh", "#!/bin/sh\n", 0o755);
    let wheel = pkg.wheel();
    assert!(
        wheel.len() < 16 << 20,
        "1 GiB of zeros took {} bytes",
        wheel.len()
    );
    let listing = zip_listing(home.path(), &wheel);
    let find = |name: &str| {
        listing
            .iter()
            .filter(|(n, _, _)| n == name)
            .collect::<Vec<_>>()
    };
    assert_eq!(find("../up").len(), 1, "{listing:?}");
    assert_eq!(find("/abs/x").len(), 1, "{listing:?}");
    assert_eq!(find("C:/drive").len(), 1, "{listing:?}");
    assert_eq!(find("hostile/link")[0].1, 0o120777, "{listing:?}");
    assert_eq!(find("hostile/cli.py").len(), 2, "{listing:?}");
    assert_eq!(find("hostile/zeros.bin")[0].2, 1 << 30);
    assert_eq!(find("hostile/run.sh")[0].1 & 0o777, 0o755);
    assert_eq!(find("hostile-1.0.0.data/scripts/tool").len(), 1);
    assert_eq!(find("evil.pth").len(), 1);

    let record = String::from_utf8(member(&wheel, "hostile-1.0.0.dist-info/RECORD")).unwrap();
    for line in [
        format!("../up,{},2", record_hash(b"up")),
        format!("/abs/x,{},3", record_hash(b"abs")),
        format!("hostile/link,{},4", record_hash(b"/etc")),
    ] {
        assert!(record.lines().any(|l| l == line), "{line}\n{record}");
    }
    assert_eq!(
        record
            .lines()
            .filter(|l| l.starts_with("hostile/cli.py,"))
            .count(),
        1
    );
    let bomb_line = record
        .lines()
        .find(|l| l.starts_with("hostile/zeros.bin,"))
        .expect("the bomb is in RECORD");

    // Python inflates the bomb (checking its CRC at the end) to the hash
    // RECORD declares.
    let file = home.path().join("bomb.whl");
    std::fs::write(&file, &wheel).unwrap();
    let script = "import base64, hashlib, sys, zipfile\n\
                  h = hashlib.sha256()\n\
                  with zipfile.ZipFile(sys.argv[1]).open('hostile/zeros.bin') as f:\n\
                  \x20   for b in iter(lambda: f.read(1 << 20), b''): h.update(b)\n\
                  print('hostile/zeros.bin,sha256=%s,%d' % (base64.urlsafe_b64encode(h.digest()).rstrip(b'=').decode(), 1 << 30))";
    let out = python(home.path(), &["-c", script, file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out).trim(), bomb_line);

    // The other bomb sizes' RECORD hashes are Python's too.
    for gib in [2u64, 3] {
        let size = gib << 30;
        let pkg = PyPkg::new("b", "1.0.0").zip_bomb("b/zeros", size);
        let record = String::from_utf8(member(&pkg.wheel(), &pkg.dist_info("RECORD"))).unwrap();
        let script = format!(
            "import base64, hashlib\nh = hashlib.sha256()\nb = bytes(1 << 20)\nfor _ in range({}): h.update(b)\nprint('b/zeros,sha256=%s,{size}' % base64.urlsafe_b64encode(h.digest()).rstrip(b'=').decode())",
            size >> 20
        );
        let out = python(home.path(), &["-c", &script]);
        assert!(
            record.lines().any(|l| l == stdout(&out).trim()),
            "{gib} GiB: {}\n{record}",
            describe(&out)
        );
    }
}

#[test]
fn fixture_record_can_lie() {
    let pkg = PyPkg::program("liar", "1.0.0", "print('x')")
        .record_wrong_hash("liar/cli.py")
        .record_omit("liar/__init__.py")
        .record_phantom("liar/ghost.py");
    let problems = record_problems(&pkg.wheel(), &pkg.dist_info("RECORD"));
    let mut problems = problems;
    problems.sort();
    assert_eq!(
        problems,
        [
            "liar/__init__.py missing from RECORD",
            "liar/cli.py: hash differs",
            "liar/ghost.py listed but absent",
        ]
    );
    let pkg = PyPkg::program("liar", "1.0.0", "").record_wrong_size("liar/cli.py");
    assert_eq!(
        record_problems(&pkg.wheel(), &pkg.dist_info("RECORD")),
        ["liar/cli.py: size differs"]
    );
}

/// sdists: listed alone when sdist-only, and their build code does leave
/// the marker when Python runs it (so its absence elsewhere means something).
#[test]
fn fixture_sdists_carry_build_code_that_runs_under_python() {
    let home = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let backend_marker = root.path().join("ran-backend");
    let setup_marker = root.path().join("ran-setup");
    let idx = PyIndex::builder()
        .package(
            PyPkg::library("built", "1.0.0", "")
                .sdist_only()
                .with_build_backend(&backend_marker),
        )
        .package(
            PyPkg::library("legacy", "1.0.0", "")
                .sdist_only()
                .setup_py(&setup_marker),
        )
        .build();
    let html = idx.page("built", false).unwrap();
    let links = anchors(&html);
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].text, "built-1.0.0.tar.gz");

    let unpack = |name: &str| -> PathBuf {
        let bytes = idx.file_bytes(&sdist_filename(name, "1.0.0"));
        let dir = root.path().join(format!("src-{name}"));
        tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]))
            .unpack(&dir)
            .unwrap();
        dir.join(format!("{name}-1.0.0"))
    };
    let built = unpack("built");
    let pyproject = std::fs::read_to_string(built.join("pyproject.toml")).unwrap();
    assert!(pyproject.contains(&format!("build-backend = \"{BACKEND_MODULE}\"")));
    assert!(pyproject.contains("backend-path = [\".\"]"));
    assert!(built.join("PKG-INFO").is_file() && built.join("built/__init__.py").is_file());

    // What a PEP 517 frontend does first: import the backend from the tree.
    let out = python(
        home.path(),
        &[
            "-c",
            &format!(
                "import sys; sys.path.insert(0, {}); import {BACKEND_MODULE}",
                py_str(built.to_str().unwrap())
            ),
        ],
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(backend_marker.exists(), "the backend left no marker");
    std::fs::remove_file(&backend_marker).unwrap();

    // The same sdist's setup.py, and the legacy one.
    for (dir, m) in [(built, &backend_marker), (unpack("legacy"), &setup_marker)] {
        let _ = python(
            home.path(),
            &[dir.join("setup.py").to_str().unwrap(), "--version"],
        );
        assert!(m.exists(), "{} left no marker", dir.display());
    }
}

#[test]
fn fixture_links_can_point_elsewhere_and_across_projects() {
    let idx = PyIndex::builder()
        .relative_urls(true)
        .package(PyPkg::program("victim", "1.0.0", ""))
        .package(PyPkg::program("intruder", "1.0.0", ""))
        .package(PyPkg::program("far", "1.0.0", "").file_host("127.0.0.2"))
        .package(PyPkg::program("named", "1.0.0", "").file_host("localhost"))
        .package(PyPkg::program("nohash", "1.0.0", "").no_hash())
        .package(PyPkg::program("anywhere", "1.0.0", "").file_url("http://127.0.0.1:1/x.whl"))
        .build();
    idx.list_foreign("victim", "intruder", "1.0.0");
    let texts = |name: &str| -> Vec<(String, String)> {
        anchors(&idx.page(name, false).unwrap())
            .into_iter()
            .map(|a| (a.text.clone(), a.attr("href").unwrap().to_string()))
            .collect()
    };
    let victim = texts("victim");
    assert_eq!(victim.len(), 2);
    assert_eq!(victim[1].0, "intruder-1.0.0-py3-none-any.whl");
    assert!(
        victim[0]
            .1
            .starts_with("../../files/victim-1.0.0-py3-none-any.whl#sha256=")
    );
    let port = idx.port();
    assert!(
        texts("far")[0]
            .1
            .starts_with(&format!("http://127.0.0.2:{port}/files/far-1.0.0-"))
    );
    assert!(
        texts("named")[0]
            .1
            .starts_with(&format!("http://localhost:{port}/files/named-1.0.0-"))
    );
    assert!(!texts("nohash")[0].1.contains('#'));
    assert_eq!(texts("anywhere")[0].1, "http://127.0.0.1:1/x.whl");
    // A relative link resolves against the page to the file.
    let page = url::Url::parse(&format!("{}victim/", idx.url())).unwrap();
    let resolved = page.join(&victim[0].1).unwrap();
    assert_eq!(resolved.path(), file_path("victim-1.0.0-py3-none-any.whl"));
    assert_eq!(idx.get(resolved.path(), None).unwrap().status, 200);
}

#[test]
fn fixture_republish_changes_bytes_and_declared_hash() {
    let idx = PyIndex::builder()
        .package(PyPkg::program("re", "1.0.0", "print(1)"))
        .build();
    let before = idx.wheel_sha256("re", "1.0.0");
    assert_eq!(
        before,
        sha256_hex(&PyPkg::program("re", "1.0.0", "print(1)").wheel()),
        "wheels are reproducible"
    );
    idx.publish(PyPkg::program("re", "1.0.0", "print(2)"));
    let after = idx.wheel_sha256("re", "1.0.0");
    assert_ne!(before, after);
    let html = idx.page("re", false).unwrap();
    assert!(html.contains(&format!("#sha256={after}")), "{html}");
    assert!(!html.contains(&before));
}

#[test]
fn fixture_faults_happen_as_asked_then_stop() {
    let idx = PyIndex::builder()
        .package(PyPkg::program("flaky", "1.0.0", ""))
        .build();
    let page = page_path("flaky");
    let wheel = file_path(&idx.wheel_name("flaky", "1.0.0"));
    let get = |target: &str| idx.get(target, None);

    idx.fault(&page, Fault::Status(503), 2);
    for expected in [503, 503, 200] {
        assert_eq!(get(&page).unwrap().status, expected);
    }

    idx.fault(&wheel, Fault::Truncate, 1);
    let r = get(&wheel).unwrap();
    let promised: usize = r.header("content-length").unwrap().parse().unwrap();
    assert!(
        r.body.len() < promised,
        "truncated: {} of {promised}",
        r.body.len()
    );
    assert_eq!(get(&wheel).unwrap().body.len(), promised);

    idx.fault(&wheel, Fault::Reset, 1);
    match get(&wheel) {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        Ok(r) => panic!("expected a reset, got status {}", r.status),
    }

    idx.fault_always(&page, Fault::Status(500));
    for _ in 0..3 {
        assert_eq!(get(&page).unwrap().status, 500);
    }
    idx.clear_faults();
    assert_eq!(get(&page).unwrap().status, 200);
    assert_eq!(idx.page_hits("flaky"), 7);
    assert_eq!(idx.file_hits(&idx.wheel_name("flaky", "1.0.0")), 3);
}

/// A real Python 3.`minor` on this machine: pyenv's (`$PYENV_ROOT`,
/// `~/.pyenv`), else `python3.X` on `PATH`, as its own `sys.executable`.
fn real_python(minor: &str) -> Option<PathBuf> {
    let mut tries: Vec<PathBuf> = Vec::new();
    let roots = [
        std::env::var_os("PYENV_ROOT").map(PathBuf::from),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")),
    ];
    for root in roots.into_iter().flatten() {
        if let Ok(read) = std::fs::read_dir(root.join("versions")) {
            for e in read.flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("3.{minor}."))
                {
                    tries.push(e.path().join("bin/python3"));
                }
            }
        }
    }
    tries.push(PathBuf::from(format!("python3.{minor}")));
    tries.into_iter().find_map(|p| {
        let out = std::process::Command::new(&p)
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    })
}

/// Real Pythons 3.11 and 3.12: pyenv has both on the machines these tests
/// run on, so their absence fails loudly rather than skipping.
fn pythons_311_312() -> (PathBuf, PathBuf) {
    match (real_python("11"), real_python("12")) {
        (Some(a), Some(b)) => (a, b),
        _ => panic!("this test needs Python 3.11 and 3.12 (pyenv has both on these machines)"),
    }
}

/// `safex uvx ARGS` with `PATH` = `path` only.
fn uvx_on(idx: &PyIndex, env: &TestEnv, path: &Path, args: &[&str]) -> std::process::Output {
    run(idx.safex(env).env("PATH", path).arg("uvx").args(args))
}

/// A `PATH` directory whose only `python3` is `default`, and in `env`'s home
/// a pyenv version `version` that is `other`. Returns the directory.
fn python_home(env: &TestEnv, default: &Path, version: &str, other: &Path) -> PathBuf {
    let bin = env.root().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(default, bin.join("python3")).unwrap();
    let pyenv = env.home().join(format!(".pyenv/versions/{version}/bin"));
    std::fs::create_dir_all(&pyenv).unwrap();
    std::os::unix::fs::symlink(other, pyenv.join("python3")).unwrap();
    bin
}

/// `networkx` needs 3.12 while the default `python3` is 3.11: like uv,
/// safex finds a Python that fits (here in a pyenv-shaped home), says which,
/// remembers it for the warm launch, and never replaces one that was asked
/// for.
#[test]
fn a_python_that_fits_requires_python_is_found() {
    let (py311, py312) = pythons_311_312();
    let idx = PyIndex::builder()
        .package(
            PyPkg::program(
                "needs-new",
                "1.0.0",
                "import sys\nprint(sys.version_info[:2])",
            )
            .requires_python(">=3.12"),
        )
        .build();
    let env = TestEnv::new();
    // PATH has only a `python3` that is 3.11; HOME has pyenv's 3.12.
    let bin = python_home(&env, &py311, "3.12.99", &py312);
    let launch =
        |extra: &[&str]| uvx_on(&idx, &env, &bin, &[extra, &["needs-new==1.0.0"]].concat());
    let out = launch(&[]);
    assert_ran(&out, "(3, 12)\n");
    let err = stderr(&out);
    assert!(
        err.contains("requires Python `>=3.12`") && err.contains(".pyenv/versions/3.12.99"),
        "{err}"
    );
    let warm = launch(&[]);
    assert_ran(&warm, "(3, 12)\n");
    assert!(
        !stderr(&warm).contains("requires Python"),
        "{}",
        stderr(&warm)
    );
    // Asked for 3.11 (before anything is locked): refused, not replaced.
    let env = TestEnv::new();
    let bin = python_home(&env, &py311, "3.12.99", &py312);
    let py = py311.to_str().unwrap();
    let out =
        run(idx
            .safex(&env)
            .env("PATH", &bin)
            .args(["uvx", "--python", py, "needs-new==1.0.0"]));
    assert_code(&out, 8);
    assert!(stderr(&out).contains(">=3.12"), "{}", describe(&out));
}

/// No Python on the machine fits: refused, listing what was tried, the
/// ones that do not run among them.
#[test]
fn no_python_that_fits_lists_what_was_tried() {
    let (py311, py312) = pythons_311_312();
    let idx = PyIndex::builder()
        .package(PyPkg::program("needs-future", "1.0.0", "print('x')").requires_python(">=3.99"))
        .build();
    let env = TestEnv::new();
    let bin = python_home(&env, &py311, "3.12.96", &py312);
    // A pyenv shim for a version that is not global: it does not run.
    crate::support::env::script(
        &bin.join("python3.13"),
        "echo 'pyenv: python3.13: command not found' >&2\nexit 127\n",
    );
    let out = run(idx
        .safex(&env)
        .env("PATH", &bin)
        .args(["uvx", "needs-future==1.0.0"]));
    assert_code(&out, 8);
    let err = stderr(&out);
    assert!(
        err.contains(">=3.99") && err.contains("safex never downloads one"),
        "{err}"
    );
    // The hint lists the interpreters it probed, the pyenv one among them.
    assert!(
        err.contains("also tried") && err.contains(".pyenv/versions/3.12.96/bin/python3"),
        "{err}"
    );
    assert!(err.contains("python3.13` (does not run)"), "{err}");
}

/// pyenv's shims on `PATH` name its root when neither `PYENV_ROOT` nor the
/// home says where it is (a GUI client's environment): its versions are
/// found there.
#[test]
fn pyenv_versions_are_found_from_its_shims_on_path() {
    let (py311, py312) = pythons_311_312();
    let idx = PyIndex::builder()
        .package(
            PyPkg::program(
                "needs-shim",
                "1.0.0",
                "import sys\nprint(sys.version_info[:2])",
            )
            .requires_python(">=3.12"),
        )
        .build();
    let env = TestEnv::new();
    let bin = env.root().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(&py311, bin.join("python3")).unwrap();
    let root = env.root().join("elsewhere/pyenv");
    std::fs::create_dir_all(root.join("shims")).unwrap();
    let v = root.join("versions/3.12.98/bin");
    std::fs::create_dir_all(&v).unwrap();
    std::os::unix::fs::symlink(&py312, v.join("python3")).unwrap();
    let path = std::env::join_paths([bin, root.join("shims")]).unwrap();
    let out = run(idx
        .safex(&env)
        .env("PATH", &path)
        .args(["uvx", "needs-shim==1.0.0"]));
    assert_ran(&out, "(3, 12)\n");
    assert!(
        stderr(&out).contains("versions/3.12.98"),
        "{}",
        describe(&out)
    );
}

/// `safex policy check uvx` reaches the same interpreter as a launch, so it
/// judges the same tree.
#[test]
fn policy_check_finds_a_python_that_fits_as_a_launch_does() {
    let (py311, py312) = pythons_311_312();
    let idx = PyIndex::builder()
        .package(PyPkg::program("needs-check", "1.0.0", "print('x')").requires_python(">=3.12"))
        .build();
    let env = TestEnv::new();
    let bin = python_home(&env, &py311, "3.12.97", &py312);
    let out = run(idx.safex(&env).env("PATH", &bin).args([
        "policy",
        "check",
        "uvx",
        "needs-check==1.0.0",
    ]));
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("allow   needs-check==1.0.0"),
        "{}",
        describe(&out)
    );
}

/// A script at `path` that appends a line to `log` each time it is run and
/// hands over to `real`: a pyenv-installed Python whose probes are counted.
fn logged_python(path: &Path, real: &Path, log: &Path) {
    let body = format!(
        "echo run >> '{}'\nexec '{}' \"$@\"\n",
        log.display(),
        real.display()
    );
    crate::support::env::script(path, &body);
}

fn runs(log: &Path) -> usize {
    std::fs::read_to_string(log).map_or(0, |t| t.lines().count())
}

fn which_python() -> PyIndex {
    PyIndex::builder()
        .package(PyPkg::program(
            "which-python",
            "1.0.0",
            "import sys\nprint(sys.version_info[:2])",
        ))
        .build()
}

/// `--python 3.12` under a minimal `PATH` whose `python3.12` is a pyenv
/// shim that fails (3.12 is not pyenv's global): the shim is passed over
/// and pyenv's 3.12 install runs, said on stderr; the warm launch runs it
/// again without starting any Python to look (nothing probed).
#[test]
fn python_version_request_passes_over_a_failing_shim() {
    let (py311, py312) = pythons_311_312();
    let env = TestEnv::new();
    let idx = which_python();
    let bin = env.root().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(&py311, bin.join("python3")).unwrap();
    let shim_log = env.root().join("shim.log");
    crate::support::env::script(
        &bin.join("python3.12"),
        &format!(
            "echo run >> '{}'\necho 'pyenv: python3.12: command not found' >&2\nexit 127\n",
            shim_log.display()
        ),
    );
    let probes = env.root().join("probes.log");
    let installed = env.home().join(".pyenv/versions/3.12.93/bin/python3");
    logged_python(&installed, &py312, &probes);
    let launch = || {
        run(idx.safex(&env).env("PATH", &bin).args([
            "uvx",
            "--python",
            "3.12",
            "which-python==1.0.0",
        ]))
    };
    let out = launch();
    assert_ran(&out, "(3, 12)\n");
    let err = stderr(&out);
    assert!(
        err.contains(&installed.display().to_string()) && err.contains("does not run"),
        "{err}"
    );
    let (shim_runs, probe_runs) = (runs(&shim_log), runs(&probes));
    assert!(shim_runs >= 1 && probe_runs >= 1);
    let warm = launch();
    assert_ran(&warm, "(3, 12)\n");
    assert!(stderr(&warm).is_empty(), "{}", describe(&warm));
    assert_eq!(
        (runs(&shim_log), runs(&probes)),
        (shim_runs, probe_runs),
        "the warm launch started a Python to look"
    );
    // `--python 3` is any 3.x, the default first.
    let out = run(idx.safex(&env).env("PATH", &bin).args([
        "uvx",
        "--python",
        "3",
        "which-python==1.0.0",
    ]));
    assert_ran(&out, "(3, 11)\n");
}

/// `--python 3.99`: no interpreter of that version, so refused (missing
/// runtime) listing each one found with the version it reported, not run
/// on the default; a warm venv of the default is not taken either.
#[test]
fn python_version_that_no_interpreter_has_is_refused_listing_them() {
    let (py311, py312) = pythons_311_312();
    let env = TestEnv::new();
    let idx = which_python();
    let bin = python_home(&env, &py311, "3.12.92", &py312);
    let launch = |extra: &[&str]| {
        uvx_on(
            &idx,
            &env,
            &bin,
            &[extra, &["which-python==1.0.0"]].concat(),
        )
    };
    assert_ran(&launch(&[]), "(3, 11)\n");
    let out = launch(&["--python", "3.99"]);
    let created = [
        bin.join("python3"),
        env.home().join(".pyenv/versions/3.12.92/bin/python3"),
    ];
    let created: Vec<&Path> = created.iter().map(|p| p.as_path()).collect();
    assert_py_refused(&env, &out, 8, &["3.99"], &[], &created);
    let err = stderr(&out);
    assert!(
        err.contains(".pyenv/versions/3.12.92/bin/python3` (3.12")
            && err.contains(&format!("{}` (3.11", bin.join("python3").display()))
            && err.contains("safex never downloads a Python"),
        "{err}"
    );
    let out = run(idx
        .safex(&env)
        .env("PATH", &bin)
        .env("SAFEX_PYTHON", "3.99")
        .args(["uvx", "which-python==1.0.0"]));
    assert_code(&out, 8);
}

/// No Python on a GUI client's `PATH`: the one pyenv installed runs.
#[test]
fn python_is_found_in_pyenv_when_path_has_none() {
    let Some(py312) = real_python("12") else {
        panic!("this test needs Python 3.12 (pyenv has it on these machines)");
    };
    let env = TestEnv::new();
    let idx = which_python();
    let empty = env.root().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let pyenv = env.home().join(".pyenv/versions/3.12.91/bin");
    std::fs::create_dir_all(&pyenv).unwrap();
    std::os::unix::fs::symlink(&py312, pyenv.join("python3")).unwrap();
    let out = uvx_on(&idx, &env, &empty, &["which-python==1.0.0"]);
    assert_ran(&out, "(3, 12)\n");
}
