//! The npm command line: argument forms, configuration, offline use, the
//! lockfile and the cache, and exit codes, each through the real binary
//! against the in-process fixture registry. The last section tests the
//! fixture registry itself.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::env::{TestEnv, stderr, stdout};
use crate::support::fixture::*;
use crate::support::snapshot::stable_stderr;
use insta::assert_snapshot;

/// A registry with `argv-echo`, whose one bin prints its arguments as JSON.
fn echo_registry() -> FixtureRegistry {
    FixtureRegistry::builder()
        .package(Pkg::program("argv-echo", "1.0.0", ECHO_ARGV))
        .build()
}

fn json_line(args: &[&str]) -> String {
    format!("{}\n", serde_json::to_string(args).unwrap())
}

// ---------------------------------------------------------------------------
// Argument forms
// ---------------------------------------------------------------------------

#[test]
fn arguments_after_the_spec_pass_verbatim() {
    let env = TestEnv::new();
    let reg = echo_registry();
    assert_ran(
        &reg.npx(&env, &["-y", "argv-echo@1.0.0", "--help", "x"]),
        &json_line(&["--help", "x"]),
    );

    // Flags that safex itself knows, `--`, spaces and empty strings included.
    let tricky = [
        "--",
        "--yes",
        "-p",
        "other@1.0.0",
        "--registry",
        "http://x/",
        "with space",
        "",
        "ü",
    ];
    let mut args = vec!["-y", "argv-echo@1.0.0"];
    args.extend(tricky);
    assert_ran(&reg.npx(&env, &args), &json_line(&tricky));
}

#[test]
fn double_dash_ends_safex_options() {
    let env = TestEnv::new();
    let reg = echo_registry();
    assert_ran(
        &reg.npx(&env, &["--yes", "--", "argv-echo@1.0.0", "a"]),
        &json_line(&["a"]),
    );
}

#[test]
fn package_option_picks_the_named_command() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("multi-bin", "1.0.0", "console.log('main');")
                .bin("othercmd", "other.js")
                .file(
                    "other.js",
                    "console.log('other:' + JSON.stringify(process.argv.slice(2)));",
                ),
        )
        .build();
    assert_ran(
        &reg.npx(&env, &["-p", "multi-bin@1.0.0", "othercmd", "arg"]),
        "other:[\"arg\"]\n",
    );
    assert_ran(
        &reg.npx(&env, &["--package", "multi-bin@1.0.0", "othercmd"]),
        "other:[]\n",
    );
}

/// A multi-call program (cowsay/cowthink, busybox-style) reads the name it
/// was started as from `process.argv[1]`: safex starts each bin under its
/// own name, as npx does, for `-p` commands, aliases, scoped packages, and
/// warm launches as well as cold ones.
#[test]
fn a_bin_is_started_under_its_own_name() {
    let env = TestEnv::new();
    let js = "const p = require('path'); console.log(p.basename(process.argv[1]), require('fs').realpathSync(process.argv[1]) === __filename);";
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::new("multi-call", "1.0.0")
                .bin("multi-call", "cli.js")
                .bin("multi-think", "cli.js")
                .file("cli.js", js),
        )
        .package(
            Pkg::new("@corp/aliased", "2.0.0")
                .bin("say-it", "lib/cli.js")
                .bin("think-it", "lib/cli.js")
                .file("lib/cli.js", js),
        )
        .build();
    for _ in 0..2 {
        assert_ran(
            &reg.npx(&env, &["-y", "-p", "multi-call@1.0.0", "multi-think", "x"]),
            "multi-think true\n",
        );
        assert_ran(
            &reg.npx(&env, &["-y", "multi-call@1.0.0"]),
            "multi-call true\n",
        );
        assert_ran(
            &reg.npx(&env, &["-y", "-p", "@corp/aliased@2.0.0", "think-it"]),
            "think-it true\n",
        );
    }
}

#[test]
fn several_packages_make_each_bin_available() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("tool-a", "1.0.0", "console.log('a');"))
        .package(Pkg::program(
            "tool-b",
            "2.0.0",
            "console.log('b', process.argv[2]);",
        ))
        .build();
    let out = reg.npx(
        &env,
        &[
            "-y",
            "-p",
            "tool-a@1.0.0",
            "-p",
            "tool-b@2.0.0",
            "tool-b",
            "x",
        ],
    );
    assert_ran(&out, "b x\n");
}

#[test]
fn single_bin_named_unlike_the_package_runs() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::new("pkg-with-tool", "1.0.0")
                .bin("the-tool", "bin/tool.js")
                .file(
                    "bin/tool.js",
                    "#!/usr/bin/env node\nconsole.log('tool ran');",
                ),
        )
        .build();
    assert_ran(&reg.npx(&env, &["-y", "pkg-with-tool@1.0.0"]), "tool ran\n");
}

#[test]
fn string_bin_and_scoped_names_run() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::new("string-bin", "1.0.0")
                .bin_path("main.js")
                .file("main.js", "console.log('string bin');"),
        )
        .package(Pkg::program(
            "@corp/scoped-tool",
            "3.1.4",
            "console.log('scoped');",
        ))
        .build();
    assert_ran(&reg.npx(&env, &["-y", "string-bin@1.0.0"]), "string bin\n");
    assert_ran(
        &reg.npx(&env, &["-y", "@corp/scoped-tool@3.1.4"]),
        "scoped\n",
    );
}

#[test]
fn program_exit_status_passes_through() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program(
            "exits-seven",
            "1.0.0",
            "console.log('bye'); process.exit(7);",
        ))
        .build();
    let out = reg.npx(&env, &["-y", "exits-seven@1.0.0"]);
    assert_code(&out, 7);
    assert_eq!(stdout(&out), "bye\n");
}

#[test]
fn unknown_option_is_named() {
    let env = TestEnv::new();
    let reg = echo_registry();
    let out = reg.npx(&env, &["--bogus", "argv-echo@1.0.0"]);
    assert_refused(&env, &out, 2, &["--bogus"], &[], &[]);
    assert!(reg.requests().is_empty(), "{:?}", reg.request_lines());
}

/// `safex ARGS` against `reg`, run to completion.
fn safex_run(env: &TestEnv, reg: &FixtureRegistry, args: &[&str]) -> Output {
    run(reg.safex(env).args(args))
}

#[test]
fn every_npm_launcher_spelling_runs_what_npx_runs() {
    let env = TestEnv::new();
    let reg = echo_registry();
    let want = json_line(&["a", "--help"]);
    for args in [
        &["npx", "-y", "argv-echo@1.0.0", "a", "--help"][..],
        &["npm", "exec", "-y", "--", "argv-echo@1.0.0", "a", "--help"],
        &[
            "npm",
            "x",
            "--package=argv-echo@1.0.0",
            "--",
            "argv-echo",
            "a",
            "--help",
        ],
        &["pnpm", "dlx", "argv-echo@1.0.0", "a", "--help"],
        &[
            "pnpx",
            "--package",
            "argv-echo@1.0.0",
            "argv-echo",
            "a",
            "--help",
        ],
        &["bunx", "-p", "argv-echo@1.0.0", "argv-echo", "a", "--help"],
        &["bun", "x", "argv-echo@1.0.0", "a", "--help"],
    ] {
        let out = safex_run(&env, &reg, args);
        assert_eq!(stdout(&out), want, "{args:?}\n{}", describe(&out));
        assert_code(&out, 0);
    }
    // Lock and policy check take the same spellings.
    let out = safex_run(
        &env,
        &reg,
        &["lock", "npm", "exec", "--", "argv-echo@1.0.0"],
    );
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("argv-echo@1.0.0"),
        "{}",
        describe(&out)
    );
    for spelled in [&["bunx"][..], &["pnpm", "dlx"], &["npm", "x"]] {
        let mut args = vec!["policy", "check"];
        args.extend(spelled);
        args.push("argv-echo@1.0.0");
        assert_code(&safex_run(&env, &reg, &args), 0);
    }
}

#[test]
fn npx_options_that_configs_carry_are_accepted() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("noisy", "1.0.0", ECHO_ARGV).script("postinstall", "exit 0"))
        .build();
    let cache = env.root().join("npm-cache");
    let launch = |level: &str| {
        let level = format!("--loglevel={level}");
        reg.npx(
            &env,
            &[
                "--no-install",
                "--ignore-existing",
                "--cache",
                cache.to_str().unwrap(),
                &level,
                "noisy@1.0.0",
                "x",
            ],
        )
    };
    // A level that is not quiet leaves the warning on; `silent` is `-q`.
    let out = launch("info");
    assert_ran(&out, &json_line(&["x"]));
    assert!(stderr(&out).contains("warning:"), "{}", describe(&out));
    let out = launch("silent");
    assert_ran(&out, &json_line(&["x"]));
    assert!(!stderr(&out).contains("warning:"), "{}", describe(&out));
    assert!(!cache.exists(), "npm's `--cache` is not used");
    assert_ran(&reg.npx(&env, &["--no", "--yes", "noisy@1.0.0"]), "[]\n");
}

#[test]
fn launcher_help_is_usage_on_stdout_and_exit_zero() {
    let env = TestEnv::new();
    let reg = echo_registry();
    for (args, says) in [
        (
            &["npx", "--help"][..],
            &[
                "Usage: safex npx ",
                "--no-install",
                "Refused:",
                "-c, --call",
            ][..],
        ),
        (&["npx", "-y", "-h"], &["Usage: safex npx "]),
        (&["uvx", "--help"], &["Usage: safex uvx ", "--from"]),
        (
            &["npm", "exec", "--help"],
            &["Usage: safex npm exec ", "--parseable"],
        ),
        (&["bunx", "--help"], &["--bun", "Node.js"]),
        (
            &["lock", "npx", "--help"],
            &["Usage: safex lock npx ", "lockfile"],
        ),
        (&["lock", "uvx", "-h"], &["Usage: safex lock uvx "]),
        (
            &["policy", "check", "npx", "--help"],
            &["Usage: safex policy check npx ", "policy's decision"],
        ),
        (
            &["policy", "check", "uvx", "--help"],
            &["Usage: safex policy check uvx "],
        ),
        (
            &["policy", "check", "--help"],
            &["Check an npm package", "Also accepted"],
        ),
        (&["--help"], &["config.toml", "uv tool run"]),
        (&["help", "npx"], &["Usage: safex npx ", "--no-install"]),
        (
            &["help", "lock", "uv", "tool", "run"],
            &["Usage: safex lock uv tool run "],
        ),
        (&["npm", "--help"], &["safex npm exec", "safex npm x"]),
    ] {
        let out = safex_run(&env, &reg, args);
        assert_code(&out, 0);
        for w in says {
            assert!(
                stdout(&out).contains(w),
                "{args:?}: no `{w}`\n{}",
                describe(&out)
            );
        }
        assert_eq!(stderr(&out), "", "{args:?}");
    }
    let out = safex_run(&env, &reg, &["policy", "check", "--help"]);
    assert!(!stdout(&out).contains("Lock an"), "{}", describe(&out));
    let out = safex_run(&env, &reg, &["npm", "install", "argv-echo@1.0.0"]);
    assert_code(&out, 2);
    assert_stderr_mentions(&out, &["`safex npm install`", "`safex npm exec`"]);
    assert_snapshot!(stable_stderr(&env, &out), @r"
    error: `safex npm install` is not a launcher safex knows
    hint: `safex npm` accepts `safex npm exec`, `safex npm x`
    ");
    assert!(reg.requests().is_empty(), "{:?}", reg.request_lines());
}

#[test]
fn env_flag_only_where_a_program_is_launched() {
    let env = TestEnv::new();
    let reg = echo_registry();
    let help = safex_run(&env, &reg, &["cache", "dir", "--help"]);
    assert_code(&help, 0);
    assert!(!stdout(&help).contains("--env"), "{}", describe(&help));
    for args in [
        &["cache", "dir", "--env", "X"][..],
        &["--env", "X", "cache", "dir"],
        &["policy", "show", "--env", "X"],
        &["lock", "npx", "--env", "X", "argv-echo@1.0.0"],
    ] {
        let out = safex_run(&env, &reg, args);
        assert_code(&out, 2);
        assert!(
            stderr(&out).contains("--env"),
            "{args:?}\n{}",
            describe(&out)
        );
    }
    let out = safex_run(&env, &reg, &["cache", "dir", "--env", "X"]);
    assert_snapshot!(stable_stderr(&env, &out), @r"
    error: unexpected argument '--env' found

    Usage: safex cache dir [OPTIONS]

    For more information, try '--help'.
    ");
    assert!(reg.requests().is_empty(), "{:?}", reg.request_lines());
}

#[test]
fn shell_string_is_refused_with_the_package_form() {
    let env = TestEnv::new();
    let reg = echo_registry();
    let out = reg.npx(&env, &["-p", "cowsay@1.6.0", "-c", "cowsay hi"]);
    assert_refused(
        &env,
        &out,
        2,
        &["-c", "safex npx -p cowsay@1.6.0 cowsay hi"],
        &[],
        &[],
    );
    let out = safex_run(&env, &reg, &["npm", "exec", "-c", "cowsay 'hi there'"]);
    assert_stderr_mentions(&out, &["safex npx -p <name>@<x.y.z> cowsay 'hi there'"]);
    assert!(reg.requests().is_empty(), "{:?}", reg.request_lines());
}

// ---------------------------------------------------------------------------
// Where the registry comes from
// ---------------------------------------------------------------------------

/// A `bin` directory first on `PATH` with an `npm` that logs its arguments
/// and answers `config get registry` with `answer` (or fails when `None`).
fn fake_npm(env: &TestEnv, answer: Option<&str>) -> (String, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let bin = env.root().join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = env.root().join("npm-calls.log");
    let reply = match answer {
        Some(url) => format!("echo '{url}'"),
        None => "echo 'npm ERR! broken' >&2; exit 1".to_owned(),
    };
    let npm = bin.join("npm");
    std::fs::write(
        &npm,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\n{reply}\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&npm, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (path, log)
}

/// With no registry configured for safex, the registry is the one the
/// user's `npx` would use: safex asks the `npm` on `PATH`, on a cold launch
/// only, and says so. When npm cannot answer, the error says what was tried
/// and how to configure one; `registries.require_configured` keeps npm out.
#[test]
fn no_registry_configured_asks_npm_once_on_the_cold_path() {
    let env = TestEnv::new();
    let reg = echo_registry();
    let (path, log) = fake_npm(&env, Some(&reg.url()));
    let launch = || {
        run(env
            .safex()
            .env("PATH", &path)
            .args(["npx", "-y", "argv-echo@1.0.0", "a"]))
    };
    let out = launch();
    assert_ran(&out, &json_line(&["a"]));
    let err = stderr(&out);
    assert!(
        err.contains("npm config get registry") && err.contains(&reg.url()),
        "the registry used and where it came from are said\n{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "config get registry\n"
    );
    // Warm: npm is not asked, nothing is said.
    let out = launch();
    assert_ran(&out, &json_line(&["a"]));
    assert!(stderr(&out).is_empty(), "{}", describe(&out));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "config get registry\n"
    );
    let fake_bin = env.root().join("fake-bin");
    assert_nothing_written_outside_cache(&env, &[&fake_bin, &fake_bin.join("npm"), &log]);

    // npm fails: the error names it and the ways to configure a registry.
    let env = TestEnv::new();
    let (path, _) = fake_npm(&env, None);
    let out = run(env
        .safex()
        .env("PATH", &path)
        .args(["npx", "-y", "argv-echo@1.0.0"]));
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("no npm registry is configured")
            && err.contains("npm config get registry")
            && err.contains("SAFEX_NPM_REGISTRY")
            && err.contains("config.toml"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // The policy forbids asking: refused, npm never started.
    let env = TestEnv::new();
    let (path, log) = fake_npm(&env, Some(&reg.url()));
    let policy = env.root().join("strict.toml");
    std::fs::write(&policy, "[registries]\nrequire_configured = true\n").unwrap();
    let out = run(env
        .safex()
        .env("PATH", &path)
        .env("SAFEX_POLICY", &policy)
        .args(["npx", "-y", "argv-echo@1.0.0"]));
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("require_configured"),
        "{}",
        describe(&out)
    );
    assert!(
        !log.exists(),
        "npm was asked although the policy forbids it"
    );
}

#[test]
fn registry_flag_configures_the_registry_and_beats_the_environment() {
    let env = TestEnv::new();
    let reg = echo_registry();
    let out = run(env.safex().args([
        "npx",
        "--registry",
        &reg.url(),
        "-y",
        "argv-echo@1.0.0",
        "x",
    ]));
    assert_ran(&out, &json_line(&["x"]));

    let env = TestEnv::new();
    let out = run(env
        .safex()
        .env("SAFEX_NPM_REGISTRY", "http://127.0.0.1:1/")
        .args([
            "npx",
            "--registry",
            &reg.url(),
            "-y",
            "argv-echo@1.0.0",
            "y",
        ]));
    assert_ran(&out, &json_line(&["y"]));
}

/// Drop-in: where safex has no setting of its own, npm's are honoured.
#[test]
fn npm_registry_settings_are_honoured() {
    let reg = echo_registry();

    let env = TestEnv::new();
    std::fs::write(
        env.home().join(".npmrc"),
        format!("registry={}\n", reg.url()),
    )
    .unwrap();
    assert_ran(
        &run(env.safex().args(["npx", "-y", "argv-echo@1.0.0"])),
        "[]\n",
    );

    let env = TestEnv::new();
    let out = run(env.safex().env("npm_config_registry", reg.url()).args([
        "npx",
        "-y",
        "argv-echo@1.0.0",
    ]));
    assert_ran(&out, "[]\n");
}

/// `.npmrc` scoped registries and tokens: the token goes to its own origin,
/// and never into a message, even an error that shows the URL.
#[test]
fn npmrc_scope_registry_and_token_are_used_and_never_printed() {
    let public = echo_registry();
    let corp = FixtureRegistry::builder()
        .package(Pkg::program("@corp/tool", "1.0.0", "console.log('corp');"))
        .build();
    let env = TestEnv::new();
    let token = "s3cr3t-t0ken-value";
    let npmrc = format!(
        "registry={}\n@corp:registry={}\n//{}/:_authToken={token}\n",
        public.url(),
        corp.url(),
        corp.addr()
    );
    std::fs::write(env.home().join(".npmrc"), npmrc).unwrap();

    assert_ran(
        &run(env.safex().args(["npx", "-y", "@corp/tool@1.0.0"])),
        "corp\n",
    );
    assert_ran(
        &run(env.safex().args(["npx", "-y", "argv-echo@1.0.0"])),
        "[]\n",
    );
    let auth: Vec<_> = corp
        .requests()
        .iter()
        .map(|r| r.header("authorization").map(str::to_string))
        .collect();
    assert!(
        !auth.is_empty()
            && auth
                .iter()
                .all(|a| a.as_deref() == Some(&*format!("Bearer {token}"))),
        "{auth:?}"
    );
    assert!(
        public
            .requests()
            .iter()
            .all(|r| r.header("authorization").is_none()),
        "token sent to another origin"
    );

    let env2 = TestEnv::new();
    std::fs::write(
        env2.home().join(".npmrc"),
        format!(
            "@corp:registry={}\n//{}/:_authToken={token}\n",
            corp.url(),
            corp.addr()
        ),
    )
    .unwrap();
    corp.fault_always(&packument_path("@corp/missing"), Fault::Status(500));
    let out = run(env2.safex().args(["npx", "-y", "@corp/missing@1.0.0"]));
    assert_code(&out, 6);
    assert!(
        !stderr(&out).contains(token),
        "token printed\n{}",
        describe(&out)
    );
}

#[test]
fn quiet_keeps_warnings_off_stderr() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("noisy", "1.0.0", "console.log('ok');").script("postinstall", "exit 0"),
        )
        .build();
    let out = run(reg.safex(&env).args(["-q", "npx", "-y", "noisy@1.0.0"]));
    assert_ran(&out, "ok\n");
    assert!(!stderr(&out).contains("warning:"), "{}", describe(&out));
}

#[test]
fn messages_have_no_colour_codes() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("noisy", "1.0.0", "").script("postinstall", "exit 0"))
        .build();
    for out in [
        reg.npx(&env, &["-y", "noisy@1.0.0"]),
        reg.npx(&env, &["-y", "noisy@^1"]),
    ] {
        assert!(
            !stderr(&out).contains('\x1b'),
            "escape codes with NO_COLOR\n{}",
            describe(&out)
        );
    }
}

// ---------------------------------------------------------------------------
// Dependency forms, resolved as npm would
// ---------------------------------------------------------------------------

/// `app` prints what it can `require`: `name=version` or `name=missing`.
fn requiring(deps: &[&str]) -> Pkg {
    let names = serde_json::to_string(deps).unwrap();
    let js = format!(
        "console.log({names}.map(n => {{ try {{ return n + '=' + require(n + '/package.json').version }} \
         catch (e) {{ return n + '=missing' }} }}).join(' '));"
    );
    Pkg::program("app", "1.0.0", &js)
}

#[test]
fn conflicting_versions_are_nested_like_npm() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            requiring(&["shared", "middle"])
                .dep("shared", "^1.0.0")
                .dep("middle", "^1.0.0"),
        )
        .package(Pkg::new("middle", "1.0.0").dep("shared", "^2.0.0").file(
            "index.js",
            "module.exports = require('shared/package.json').version;",
        ))
        .package(Pkg::new("shared", "1.5.0"))
        .package(Pkg::new("shared", "2.3.0"))
        .build();
    let out = reg.npx(&env, &["-y", "app@1.0.0"]);
    assert_ran(&out, "shared=1.5.0 middle=1.0.0\n");
    let check =
        Pkg::program("check", "1.0.0", "console.log(require('middle'));").dep("middle", "1.0.0");
    reg.publish(check);
    assert_ran(&reg.npx(&env, &["-y", "check@1.0.0"]), "2.3.0\n");
}

#[test]
fn optional_dependency_for_another_platform_is_skipped() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            requiring(&["win-only", "any-os"])
                .optional_dep("win-only", "^1.0.0")
                .optional_dep("any-os", "^1.0.0"),
        )
        .package(Pkg::new("win-only", "1.0.0").os(&["win32"]).cpu(&["x64"]))
        .package(Pkg::new("any-os", "1.0.0"))
        .build();
    assert_ran(
        &reg.npx(&env, &["-y", "app@1.0.0"]),
        "win-only=missing any-os=1.0.0\n",
    );
    assert_eq!(
        reg.tarball_hits("win-only", "1.0.0"),
        0,
        "{:?}",
        reg.request_lines()
    );
}

/// npm 7 and later install peer dependencies.
#[test]
fn peer_dependency_is_installed() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(requiring(&["plugin", "host-lib"]).dep("plugin", "^1.0.0"))
        .package(Pkg::new("plugin", "1.0.0").peer_dep("host-lib", "^3.0.0"))
        .package(Pkg::new("host-lib", "3.2.1"))
        .build();
    assert_ran(
        &reg.npx(&env, &["-y", "app@1.0.0"]),
        "plugin=1.0.0 host-lib=3.2.1\n",
    );
}

/// A placed package's dependencies have their tarballs fetched as soon as
/// their metadata is in, not when the breadth-first resolver reaches them:
/// `b-fast` comes after `a-slow` in that order, yet its tarball is asked for
/// while `a-slow`'s metadata is still on its way.
#[test]
fn dependency_tarballs_are_fetched_ahead_of_placement() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("ahead-app", "1.0.0", ECHO_ARGV)
                .dep("a-slow", "^1.0.0")
                .dep("b-fast", "^1.0.0"),
        )
        .package(Pkg::new("a-slow", "1.0.0"))
        .package(Pkg::new("b-fast", "1.2.0"))
        .build();
    reg.fault_always(
        "/a-slow",
        Fault::SlowFirstByte(std::time::Duration::from_millis(1500)),
    );
    assert_ran(&reg.npx(&env, &["-y", "ahead-app@1.0.0"]), "[]\n");
    let lines = reg.request_lines();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.ends_with(needle))
            .unwrap_or_else(|| panic!("no request for {needle}: {lines:?}"))
    };
    assert!(
        at("/b-fast/-/b-fast-1.2.0.tgz") < at("/a-slow/-/a-slow-1.0.0.tgz"),
        "{lines:?}"
    );
    // Fetched once: the installer found it in the blob store.
    assert_eq!(reg.tarball_hits("b-fast", "1.2.0"), 1, "{lines:?}");
}

/// A bundled dependency ships inside the tarball (already covered by its
/// hash); the registry's copy is neither fetched nor used.
#[test]
fn bundled_dependency_comes_from_the_tarball() {
    let env = TestEnv::new();
    let bundled_json = r#"{"name":"bundled","version":"1.0.0-inside"}"#;
    let reg = FixtureRegistry::builder()
        .package(
            requiring(&["bundled"])
                .dep("bundled", "^1.0.0-0")
                .bundle_deps(&["bundled"])
                .file("node_modules/bundled/package.json", bundled_json),
        )
        .package(Pkg::new("bundled", "1.9.0"))
        .build();
    assert_ran(
        &reg.npx(&env, &["-y", "app@1.0.0"]),
        "bundled=1.0.0-inside\n",
    );
    assert_eq!(
        reg.packument_hits("bundled") + reg.tarball_hits("bundled", "1.9.0"),
        0,
        "{:?}",
        reg.request_lines()
    );
}

#[test]
fn engines_node_mismatch_is_only_a_warning() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("future-node", "1.0.0", "console.log('ran');")
                .field("engines", serde_json::json!({"node": ">=999"})),
        )
        .build();
    let out = reg.npx(&env, &["-y", "future-node@1.0.0"]);
    assert_ran(&out, "ran\n");
    assert_warning(&out, &["future-node"]);
}

// ---------------------------------------------------------------------------
// Offline and warm launches
// ---------------------------------------------------------------------------

#[test]
fn offline_with_an_empty_cache_says_what_is_missing() {
    let env = TestEnv::new();
    let reg = echo_registry();
    let out = reg.npx(&env, &["--offline", "-y", "argv-echo@1.0.0"]);
    assert_refused(&env, &out, 6, &["argv-echo"], &[], &[]);
    let err = stderr(&out).to_lowercase();
    assert!(
        err.contains("offline") || err.contains("cache"),
        "{}",
        describe(&out)
    );
    assert!(
        reg.requests().is_empty(),
        "offline, yet: {:?}",
        reg.request_lines()
    );

    let out = run(reg
        .safex(&env)
        .env("SAFEX_OFFLINE", "1")
        .args(["npx", "-y", "argv-echo@1.0.0"]));
    assert_refused(&env, &out, 6, &["argv-echo"], &[], &[]);
    assert!(
        reg.requests().is_empty(),
        "offline, yet: {:?}",
        reg.request_lines()
    );
}

/// A package with a dependency, warmed up once.
fn warmed_up(env: &TestEnv) -> FixtureRegistry {
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("warm-app", "1.0.0", "console.log(require('warm-dep'));")
                .dep("warm-dep", "^1.0.0"),
        )
        .package(Pkg::new("warm-dep", "1.0.0").file("index.js", "module.exports = 'warm';"))
        .build();
    assert_ran(&reg.npx(env, &["-y", "warm-app@1.0.0"]), "warm\n");
    reg.clear_log();
    reg
}

#[test]
fn warm_launch_makes_no_requests() {
    let env = TestEnv::new();
    let reg = warmed_up(&env);
    assert_ran(&reg.npx(&env, &["-y", "warm-app@1.0.0"]), "warm\n");
    assert!(
        reg.requests().is_empty(),
        "a warm launch asked {:?}",
        reg.request_lines()
    );
}

fn lock_summaries(env: &TestEnv) -> usize {
    std::fs::read_dir(env.cache().join("v1/lockindex"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
        .unwrap_or(0)
}

/// The cold launch leaves the lock entry's summary in the cache, so the
/// first warm launch already skips parsing the lockfile; a changed lockfile
/// is summarized anew rather than trusted from the old summary.
#[test]
fn cold_launch_leaves_the_lock_summary_for_the_warm_path() {
    let env = TestEnv::new();
    let reg = warmed_up(&env);
    assert_eq!(lock_summaries(&env), 1);
    assert_ran(&reg.npx(&env, &["-y", "warm-app@1.0.0"]), "warm\n");
    assert_eq!(lock_summaries(&env), 1, "the warm launch found the summary");
    let mut text = std::fs::read_to_string(env.lockfile()).unwrap();
    text.push_str("# reviewed\n");
    std::fs::write(env.lockfile(), text).unwrap();
    assert_ran(&reg.npx(&env, &["-y", "warm-app@1.0.0"]), "warm\n");
    assert_eq!(
        lock_summaries(&env),
        2,
        "an edited lockfile is summarized anew"
    );
    assert!(reg.requests().is_empty(), "{:?}", reg.request_lines());
}

#[test]
fn offline_after_warm_up_runs_without_requests() {
    let env = TestEnv::new();
    let reg = warmed_up(&env);
    let out = run(reg
        .safex(&env)
        .env("SAFEX_OFFLINE", "1")
        .args(["npx", "-y", "warm-app@1.0.0"]));
    assert_ran(&out, "warm\n");
    assert_ran(
        &reg.npx(&env, &["--offline", "-y", "warm-app@1.0.0"]),
        "warm\n",
    );
    assert_ran(
        &reg.npx(&env, &["--prefer-offline", "-y", "warm-app@1.0.0"]),
        "warm\n",
    );
    assert!(
        reg.requests().is_empty(),
        "offline, yet: {:?}",
        reg.request_lines()
    );
}

// ---------------------------------------------------------------------------
// The lockfile
// ---------------------------------------------------------------------------

/// `lock-me` depends on `lock-dep`; running either leaves a marker.
fn lockable(env: &TestEnv) -> FixtureRegistry {
    let ran = env.root().join("ran-program");
    FixtureRegistry::builder()
        .package(
            Pkg::program("lock-me", "1.0.0", &js_touch(&ran))
                .dep("lock-dep", "^1.0.0")
                .script("postinstall", &touch_script(&ran)),
        )
        .package(Pkg::new("lock-dep", "1.4.0").script("install", &touch_script(&ran)))
        .build()
}

#[test]
fn lock_records_the_tree_without_running_anything() {
    let env = TestEnv::new();
    let reg = lockable(&env);
    let out = run(reg.safex(&env).args(["lock", "npx", "lock-me@1.0.0"]));
    assert_code(&out, 0);
    assert!(stdout(&out).contains("lock-me@1.0.0"), "{}", describe(&out));
    assert!(
        stdout(&out).contains("lock-dep@1.4.0"),
        "the tree includes the dependency\n{}",
        describe(&out)
    );
    assert_no_markers(&[&env.root().join("ran-program")]);
    assert_nothing_written_outside_cache(&env, &[]);

    let lock = std::fs::read_to_string(env.lockfile()).expect("lockfile written");
    for needle in [
        "lock-me",
        "lock-dep",
        &reg.integrity_of("lock-me", "1.0.0"),
        &reg.integrity_of("lock-dep", "1.4.0"),
    ] {
        assert!(lock.contains(needle), "lockfile lacks `{needle}`:\n{lock}");
    }
    assert!(
        !lock.contains("127.0.0.1"),
        "no registry URL in the lockfile:\n{lock}"
    );

    // What was locked launches under `frozen`.
    let out =
        run(reg
            .safex(&env)
            .env("SAFEX_LOCK_MODE", "frozen")
            .args(["npx", "-y", "lock-me@1.0.0"]));
    assert_code(&out, 0);
}

#[test]
fn frozen_lock_without_an_entry_is_refused() {
    let env = TestEnv::new();
    let reg = echo_registry();
    let out = run(reg.safex(&env).env("SAFEX_LOCK_MODE", "frozen").args([
        "npx",
        "-y",
        "argv-echo@1.0.0",
    ]));
    assert_refused(&env, &out, 3, &["argv-echo"], &[], &[]);
    assert_eq!(
        reg.tarball_hits("argv-echo", "1.0.0"),
        0,
        "{:?}",
        reg.request_lines()
    );

    let config = env.root().join("config.toml");
    std::fs::write(&config, "lock_mode = \"frozen\"\n").unwrap();
    let out = reg.npx(&env, &["-y", "argv-echo@1.0.0"]);
    assert_refused(&env, &out, 3, &["argv-echo"], &[], &[&config]);
}

/// A registry that gains a newer dependency version after the root was
/// locked: the locked version is used, and nothing is re-resolved.
fn drifting(env: &TestEnv) -> FixtureRegistry {
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("locked-app", "1.0.0", "console.log(require('drift'));")
                .dep("drift", "^1.0.0"),
        )
        .package(Pkg::new("drift", "1.0.0").file("index.js", "module.exports = 'drift 1.0.0';"))
        .build();
    assert_ran(&reg.npx(env, &["-y", "locked-app@1.0.0"]), "drift 1.0.0\n");
    reg.publish(Pkg::new("drift", "1.1.0").file("index.js", "module.exports = 'drift 1.1.0';"));
    reg.clear_log();
    reg
}

#[test]
fn locked_root_does_not_re_resolve_when_the_registry_moves() {
    let env = TestEnv::new();
    let reg = drifting(&env);
    assert_ran(&reg.npx(&env, &["-y", "locked-app@1.0.0"]), "drift 1.0.0\n");
    assert!(
        reg.metadata_requests().is_empty(),
        "re-resolved: {:?}",
        reg.request_lines()
    );
}

#[test]
fn locked_root_with_a_cold_cache_keeps_its_locked_versions() {
    let env = TestEnv::new();
    let reg = drifting(&env);
    std::fs::remove_dir_all(env.cache()).unwrap();
    assert_ran(&reg.npx(&env, &["-y", "locked-app@1.0.0"]), "drift 1.0.0\n");
    assert_eq!(
        reg.tarball_hits("drift", "1.1.0"),
        0,
        "{:?}",
        reg.request_lines()
    );
}

// ---------------------------------------------------------------------------
// The cache
// ---------------------------------------------------------------------------

#[test]
fn cache_dir_prints_the_cache_root() {
    let env = TestEnv::new();
    let out = run(env.safex().args(["cache", "dir"]));
    assert_code(&out, 0);
    let printed = PathBuf::from(stdout(&out).trim());
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    assert_eq!(canon(&printed), canon(&env.cache()), "{}", describe(&out));
}

/// Every file under `dir` that starts with the gzip magic: the cached tarballs.
fn gzip_blobs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(gzip_blobs(&p));
        } else if std::fs::read(&p).is_ok_and(|b| b.starts_with(&[0x1f, 0x8b])) {
            found.push(p);
        }
    }
    found
}

#[test]
fn cache_verify_passes_then_detects_a_corrupted_tarball() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("verify-me", "1.0.0", ""))
        .build();
    assert_code(&reg.npx(&env, &["-y", "verify-me@1.0.0"]), 0);
    assert_code(&run(env.safex().args(["cache", "verify"])), 0);

    let blobs = gzip_blobs(&env.cache().join("v1"));
    assert!(
        !blobs.is_empty(),
        "no cached tarball under {}",
        env.cache().join("v1").display()
    );
    for blob in &blobs {
        let mut bytes = std::fs::read(blob).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(blob, bytes).unwrap();
    }
    let out = run(env.safex().args(["cache", "verify"]));
    assert_code(&out, 4);
    assert_stderr_mentions(&out, &["verify-me"]);
}

// ---------------------------------------------------------------------------
// Exit codes: every class of docs/exit-codes.md comes from a real case
// ---------------------------------------------------------------------------

/// `(code, class)` rows of the table in `docs/exit-codes.md`.
fn documented_codes() -> Vec<(i32, String)> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/exit-codes.md"))
            .expect("docs/exit-codes.md");
    doc.lines()
        .filter_map(|l| {
            let mut cells = l.trim().strip_prefix('|')?.split('|').map(str::trim);
            let code = cells.next()?.parse().ok()?;
            Some((code, cells.next()?.to_string()))
        })
        .collect()
}

/// The codes `src/error.rs` maps its kinds to (`Kind::X => N,`).
fn codes_in_error_rs() -> Vec<i32> {
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/error.rs"))
        .expect("src/error.rs");
    let mut codes: Vec<i32> = src
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("Kind::")?
                .split_once("=>")?
                .1
                .trim()
                .trim_end_matches(',')
                .parse()
                .ok()
        })
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

fn usage_case() -> Output {
    let env = TestEnv::new();
    echo_registry().npx(&env, &["--bogus", "argv-echo@1.0.0"])
}

fn policy_case() -> Output {
    let env = TestEnv::new();
    let reg = echo_registry();
    run(reg
        .safex(&env)
        .env("SAFEX_LOCK_MODE", "frozen")
        .args(["npx", "-y", "argv-echo@1.0.0"]))
}

fn integrity_case() -> Output {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("tampered", "1.0.0", "").integrity(&sri_sha512(b"other bytes")))
        .build();
    reg.npx(&env, &["-y", "tampered@1.0.0"])
}

fn unsafe_case() -> Output {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("sneaky", "1.0.0", "").entry(Entry::file("package/../x", "x")))
        .build();
    reg.npx(&env, &["-y", "sneaky@1.0.0"])
}

fn registry_case() -> Output {
    let env = TestEnv::new();
    echo_registry().npx(&env, &["-y", "not-published@1.0.0"])
}

fn local_io_case() -> Output {
    let env = TestEnv::new();
    std::fs::write(env.lockfile(), "this is [not toml").unwrap();
    echo_registry().npx(&env, &["-y", "argv-echo@1.0.0"])
}

fn runtime_case() -> Output {
    let env = TestEnv::new();
    let reg = echo_registry();
    let empty_path = env.root().join("no-node-here");
    std::fs::create_dir_all(&empty_path).unwrap();
    run(reg
        .safex(&env)
        .env("PATH", &empty_path)
        .args(["npx", "-y", "argv-echo@1.0.0"]))
}

fn success_case() -> Output {
    let env = TestEnv::new();
    echo_registry().npx(&env, &["-y", "argv-echo@1.0.0"])
}

#[test]
fn exit_code_table() {
    let documented = documented_codes();
    let mut doc_codes: Vec<i32> = documented.iter().map(|(c, _)| *c).collect();
    doc_codes.sort();
    assert_eq!(
        doc_codes,
        (0..=8).collect::<Vec<_>>(),
        "docs/exit-codes.md rows: {documented:?}"
    );
    let mut error_rs = codes_in_error_rs();
    error_rs.push(0);
    error_rs.sort();
    assert_eq!(
        doc_codes, error_rs,
        "docs/exit-codes.md and src/error.rs disagree"
    );

    // Code 1 (internal) is a bug by definition: no case can ask for it.
    let cases: [(i32, fn() -> Output); 8] = [
        (0, success_case),
        (2, usage_case),
        (3, policy_case),
        (4, integrity_case),
        (5, unsafe_case),
        (6, registry_case),
        (7, local_io_case),
        (8, runtime_case),
    ];
    let mut failures = Vec::new();
    for (code, class) in documented.iter().filter(|(c, _)| *c != 1) {
        let Some((_, case)) = cases.iter().find(|(c, _)| c == code) else {
            failures.push(format!("no case produces {code} ({class})"));
            continue;
        };
        let out = case();
        eprintln!("{code} ({class}):\n{}", describe(&out));
        if out.status.code() != Some(*code) {
            failures.push(format!("{code} ({class}):\n{}", describe(&out)));
        } else if *code != 0 && !stderr(&out).contains("error:") {
            failures.push(format!(
                "{code} ({class}) without an `error:` line:\n{}",
                describe(&out)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------------------
// The fixture registry itself
// ---------------------------------------------------------------------------

fn get_json(reg: &FixtureRegistry, target: &str) -> serde_json::Value {
    let r = raw_get(reg.addr(), target).expect("GET");
    assert_eq!(r.status, 200, "GET {target}");
    serde_json::from_slice(&r.body).expect("JSON body")
}

/// One tar entry as read back: raw path bytes, type, link name, contents.
struct TarEntry {
    path: Vec<u8>,
    kind: tar::EntryType,
    link: Option<Vec<u8>>,
    data: Vec<u8>,
}

fn tar_entries(tgz: &[u8]) -> Vec<TarEntry> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let mut out = Vec::new();
    for e in archive.entries().expect("tar") {
        let mut e = e.expect("entry");
        let path = e.path_bytes().into_owned();
        let kind = e.header().entry_type();
        let link = e.link_name_bytes().map(|l| l.into_owned());
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("entry data");
        out.push(TarEntry {
            path,
            kind,
            link,
            data,
        });
    }
    out
}

fn entry<'a>(entries: &'a [TarEntry], path: &[u8]) -> &'a TarEntry {
    let found = entries.iter().find(|e| e.path == path);
    found.unwrap_or_else(|| panic!("no entry {}", String::from_utf8_lossy(path)))
}

#[test]
fn fixture_serves_packument_and_tarball_whose_sha512_matches() {
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("hello", "1.0.0", ECHO_ARGV))
        .package(Pkg::program("hello", "1.1.0", ECHO_ARGV))
        .package(Pkg::program("hello", "2.0.0-rc.1", ECHO_ARGV))
        .package(Pkg::program("@scope/tool", "0.1.0", ECHO_ARGV).dep("hello", "^1.0.0"))
        .build();

    let doc = get_json(&reg, "/hello");
    assert_eq!(doc["name"], "hello");
    assert_eq!(
        doc["dist-tags"]["latest"], "1.1.0",
        "latest is the highest release"
    );
    assert!(doc["time"]["1.0.0"].is_string() && doc["time"]["created"].is_string());
    let v = &doc["versions"]["1.1.0"];
    assert_eq!(v["bin"]["hello"], "cli.js");

    let url = v["dist"]["tarball"].as_str().unwrap();
    let target = url
        .strip_prefix(&format!("http://{}", reg.addr()))
        .expect("tarball on the registry");
    assert_eq!(target, tarball_path("hello", "1.1.0"));
    let r = raw_get(reg.addr(), target).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(&*r.body.len().to_string()));
    assert_eq!(v["dist"]["integrity"], sri_sha512(&r.body));
    assert_eq!(v["dist"]["shasum"], sha1_hex(&r.body));

    let entries = tar_entries(&r.body);
    assert_eq!(entries[0].path, b"package/package.json");
    let manifest: serde_json::Value = serde_json::from_slice(&entries[0].data).unwrap();
    assert_eq!(manifest["version"], "1.1.0");
    entry(&entries, b"package/cli.js");

    for target in ["/@scope%2ftool", "/@scope%2Ftool", "/@scope/tool"] {
        let doc = get_json(&reg, target);
        assert_eq!(doc["name"], "@scope/tool", "{target}");
        let v = &doc["versions"]["0.1.0"];
        assert_eq!(v["dependencies"]["hello"], "^1.0.0");
        let r = raw_get(reg.addr(), &tarball_path("@scope/tool", "0.1.0")).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(v["dist"]["integrity"], sri_sha512(&r.body));
    }
    assert_eq!(raw_get(reg.addr(), "/nope").unwrap().status, 404);
    assert_eq!(
        reg.packument_hits("@scope/tool"),
        3,
        "{:?}",
        reg.request_lines()
    );
}

#[test]
fn fixture_writes_hostile_entries_verbatim() {
    let deep = format!("package/{}x", "../".repeat(40));
    let pkg = Pkg::new("hostile", "1.0.0")
        .entry(Entry::file("package/../x", "up"))
        .entry(Entry::file("/abs/x", "abs"))
        .entry(Entry::file("evil/x", "other top"))
        .entry(Entry::symlink("package/link", "/etc"))
        .entry(Entry::hardlink("package/hard", "/etc/passwd"))
        .entry(Entry::char_device("package/null", 1, 3))
        .entry(Entry::file(&deep, "deep"));
    let entries = tar_entries(&pkg.tarball());
    assert_eq!(entry(&entries, b"package/../x").data, b"up");
    assert_eq!(entry(&entries, b"/abs/x").data, b"abs");
    assert_eq!(entry(&entries, b"evil/x").data, b"other top");
    let link = entry(&entries, b"package/link");
    assert_eq!(
        (link.kind, link.link.as_deref()),
        (tar::EntryType::Symlink, Some(&b"/etc"[..]))
    );
    let hard = entry(&entries, b"package/hard");
    assert_eq!(
        (hard.kind, hard.link.as_deref()),
        (tar::EntryType::Link, Some(&b"/etc/passwd"[..]))
    );
    assert_eq!(entry(&entries, b"package/null").kind, tar::EntryType::Char);
    assert_eq!(
        entry(&entries, deep.as_bytes()).data,
        b"deep",
        "long paths use the ustar prefix"
    );
}

#[test]
fn fixture_bomb_is_small_on_the_wire_and_valid_gzip() {
    let size = 3 * (1 << 20) + 777;
    let tgz = Pkg::new("bomb", "1.0.0")
        .entry(Entry::zeros("package/zeros", size))
        .tarball();
    let entries = tar_entries(&tgz);
    let zeros = entry(&entries, b"package/zeros");
    assert_eq!(zeros.data.len() as u64, size);
    assert!(zeros.data.iter().all(|&b| b == 0));
    // GzDecoder checks the trailer's CRC and length at the end of the stream.
    let mut all = Vec::new();
    flate2::read::GzDecoder::new(&tgz[..])
        .read_to_end(&mut all)
        .expect("valid gzip trailer");

    let big = Pkg::new("bomb", "1.0.0")
        .entry(Entry::zeros("package/zeros", 4 << 30))
        .tarball();
    assert!(
        big.len() < 8 << 20,
        "4 GiB of zeros took {} bytes",
        big.len()
    );
}

#[test]
fn fixture_registry_and_tarball_manifests_can_disagree() {
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("confused", "1.0.0", "")
                .script("postinstall", "echo hi")
                .registry_remove("scripts")
                .tarball_field("version", "6.6.6")
                .tarball_host("127.0.0.2")
                .integrity("sha512-AAAA"),
        )
        .build();
    let doc = get_json(&reg, "/confused");
    let v = &doc["versions"]["1.0.0"];
    assert!(v.get("scripts").is_none());
    assert_eq!(v["dist"]["integrity"], "sha512-AAAA");
    let path = tarball_path("confused", "1.0.0");
    assert_eq!(
        v["dist"]["tarball"],
        format!("http://127.0.0.2:{}{path}", reg.port()).as_str()
    );
    let entries = tar_entries(&reg.tarball_bytes("confused", "1.0.0"));
    let manifest: serde_json::Value = serde_json::from_slice(&entries[0].data).unwrap();
    assert_eq!(manifest["scripts"]["postinstall"], "echo hi");
    assert_eq!(manifest["version"], "6.6.6");
}

#[test]
fn fixture_republish_changes_bytes_and_declared_integrity() {
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("re", "1.0.0", "1"))
        .build();
    let before = reg.integrity_of("re", "1.0.0");
    reg.publish(Pkg::program("re", "1.0.0", "2"));
    let after = reg.integrity_of("re", "1.0.0");
    assert_ne!(before, after);
    let doc = get_json(&reg, "/re");
    assert_eq!(
        doc["versions"]["1.0.0"]["dist"]["integrity"],
        after.as_str()
    );
}

#[test]
fn fixture_faults_happen_as_asked_then_stop() {
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("flaky", "1.0.0", ""))
        .build();
    let tgz = tarball_path("flaky", "1.0.0");
    let get = |target: &str| raw_get(reg.addr(), target);

    reg.fault("/flaky", Fault::Status(503), 2);
    for expected in [503, 503, 200] {
        assert_eq!(get("/flaky").unwrap().status, expected);
    }

    reg.fault(&tgz, Fault::Truncate, 1);
    let r = get(&tgz).unwrap();
    let promised: usize = r.header("content-length").unwrap().parse().unwrap();
    assert!(
        r.body.len() < promised,
        "truncated: {} of {promised}",
        r.body.len()
    );
    assert_eq!(get(&tgz).unwrap().body.len(), promised);

    reg.fault(&tgz, Fault::Reset, 1);
    match get(&tgz) {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        Ok(r) => panic!("expected a reset, got status {}", r.status),
    }

    let delay = std::time::Duration::from_millis(300);
    reg.fault(&tgz, Fault::SlowFirstByte(delay), 1);
    let started = std::time::Instant::now();
    assert_eq!(get(&tgz).unwrap().status, 200);
    assert!(started.elapsed() >= delay);

    reg.fault_always("/flaky", Fault::Status(500));
    for _ in 0..3 {
        assert_eq!(get("/flaky").unwrap().status, 500);
    }
    assert_eq!(reg.packument_hits("flaky"), 6);
    assert_eq!(reg.tarball_hits("flaky", "1.0.0"), 4);
}

/// Regression: offline, a locked tree whose environment was removed is
/// rebuilt from the cached archives, even when no registry is configured at
/// all (an MCP client may start safex with almost no environment).
#[test]
fn offline_rebuild_from_cached_archives_needs_no_registry() {
    let env = TestEnv::new();
    let reg = warmed_up(&env);
    std::fs::remove_dir_all(env.cache().join("v1").join("npm")).unwrap();
    let out = run(env
        .safex()
        .env("SAFEX_OFFLINE", "1")
        .args(["npx", "-y", "warm-app@1.0.0"]));
    assert_ran(&out, "warm\n");
    assert!(
        reg.requests().is_empty(),
        "offline, yet: {:?}",
        reg.request_lines()
    );
}

// ---------------------------------------------------------------------------
// Finding node as a login shell would (a GUI client's minimal PATH)
// ---------------------------------------------------------------------------

/// The real `node` on this machine: the fake ones hand over to it.
fn real_node() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("node"))
        .find(|p| p.is_file())
        .expect("these tests need a real `node` on PATH to hand over to")
}

/// A fake `node` at `home/rel` that reports `version` and otherwise runs
/// the real node with `FAKE_NODE` set to its own path (what programs print).
fn fake_node(dir: &Path, rel: &str, version: &str) -> PathBuf {
    let path = dir.join(rel);
    let body = format!(
        "if [ \"$1\" = --version ]; then echo v{version}; exit 0; fi\nFAKE_NODE=\"$0\" exec {} \"$@\"\n",
        real_node().display()
    );
    crate::support::env::script(&path, &body);
    path
}

/// A program that prints which (fake) node runs it.
fn which_node(engines: Option<&str>) -> FixtureRegistry {
    let mut pkg = Pkg::program(
        "which-node",
        "1.0.0",
        "console.log(process.env.FAKE_NODE || 'real');",
    );
    if let Some(e) = engines {
        pkg = pkg.field("engines", serde_json::json!({ "node": e }));
    }
    FixtureRegistry::builder().package(pkg).build()
}

/// `safex npx which-node@1.0.0` with `PATH` = `path` only (an empty
/// directory: no `node`, as under a GUI client where `/usr/bin` has none).
fn launch_with_path(reg: &FixtureRegistry, env: &TestEnv, path: &Path) -> Output {
    std::fs::create_dir_all(path).unwrap();
    run(reg
        .safex(env)
        .env("PATH", path)
        .env_remove("FAKE_NODE")
        .args(["npx", "which-node@1.0.0"]))
}

/// With no `node` on `PATH`, each version manager's install is found where
/// it keeps it, and the warm launch runs the same one.
#[test]
fn node_is_found_in_each_version_managers_directory() {
    for rel in [
        ".nvm/versions/node/v22.1.0/bin/node",
        ".local/share/fnm/node-versions/v22.1.0/installation/bin/node",
        ".volta/tools/image/node/22.1.0/bin/node",
        ".asdf/installs/nodejs/22.1.0/bin/node",
        ".local/share/mise/installs/node/22.1.0/bin/node",
    ] {
        let env = TestEnv::new();
        let reg = which_node(None);
        let node = fake_node(&env.home(), rel, "22.1.0");
        let empty = env.root().join("empty");
        let out = launch_with_path(&reg, &env, &empty);
        assert_ran(&out, &format!("{}\n", node.display()));
        assert!(
            stderr(&out).contains("no `node` is on PATH"),
            "{}",
            describe(&out)
        );
        let warm = launch_with_path(&reg, &env, &empty);
        assert_ran(&warm, &format!("{}\n", node.display()));
        assert!(!stderr(&warm).contains("note:"), "{}", describe(&warm));
    }
}

/// Newest first among the managers' installs, unless the root's
/// `engines.node` excludes it: PATH's node (20) does not fit `^18`, nvm's
/// (22) is newer but does not either, volta's 18 does and is taken, said on
/// stderr, and remembered for the warm launch.
#[test]
fn a_node_that_fits_engines_is_taken_from_a_version_manager() {
    let env = TestEnv::new();
    let reg = which_node(Some("^18"));
    let bin = env.root().join("bin");
    let on_path = fake_node(&bin, "node", "20.5.0");
    fake_node(&env.home(), ".nvm/versions/node/v22.1.0/bin/node", "22.1.0");
    let volta = fake_node(
        &env.home(),
        ".volta/tools/image/node/18.19.0/bin/node",
        "18.19.0",
    );
    let out = launch_with_path(&reg, &env, &bin);
    assert_ran(&out, &format!("{}\n", volta.display()));
    let err = stderr(&out);
    assert!(
        err.contains("wants node `^18`")
            && err.contains(&on_path.display().to_string())
            && err.contains("volta"),
        "{err}"
    );
    assert!(!err.contains("warning:"), "{err}");
    let warm = launch_with_path(&reg, &env, &bin);
    assert_ran(&warm, &format!("{}\n", volta.display()));
    assert!(stderr(&warm).is_empty(), "{}", describe(&warm));

    // No install fits: PATH's node runs, with npm's warning.
    let env = TestEnv::new();
    let reg = which_node(Some(">=99"));
    let on_path = fake_node(&env.root().join("bin"), "node", "20.5.0");
    fake_node(&env.home(), ".nvm/versions/node/v22.1.0/bin/node", "22.1.0");
    let out = launch_with_path(&reg, &env, &env.root().join("bin"));
    assert_ran(&out, &format!("{}\n", on_path.display()));
    assert_warning(&out, &["which-node@1.0.0", ">=99"]);
}

/// No node anywhere: a missing runtime (exit 8), naming each place looked
/// at and how to point safex at one.
#[test]
fn no_node_anywhere_lists_the_places_tried() {
    let env = TestEnv::new();
    let reg = which_node(None);
    let out = launch_with_path(&reg, &env, &env.root().join("empty"));
    assert_code(&out, 8);
    let err = stderr(&out);
    for place in [
        "empty",
        ".nvm/versions/node",
        ".local/share/fnm/node-versions",
        ".volta/tools/image/node",
        ".asdf/installs/nodejs",
        ".local/share/mise/installs/node",
        "/opt/homebrew/bin",
        "SAFEX_NODE",
    ] {
        assert!(err.contains(place), "stderr does not name `{place}`\n{err}");
    }
    assert!(stdout(&out).is_empty());
}

/// A manager's default comes before its newer installs, as its shell hook
/// would have it: nvm's `alias/default` (here through `lts/iron`) and fnm's
/// `aliases/default` link.
#[test]
fn a_version_managers_default_comes_before_newer_installs() {
    let env = TestEnv::new();
    let reg = which_node(None);
    let nvm = env.home().join(".nvm");
    fake_node(&nvm, "versions/node/v22.1.0/bin/node", "22.1.0");
    let default = fake_node(&nvm, "versions/node/v20.1.0/bin/node", "20.1.0");
    std::fs::create_dir_all(nvm.join("alias/lts")).unwrap();
    std::fs::write(nvm.join("alias/default"), "lts/iron\n").unwrap();
    std::fs::write(nvm.join("alias/lts/iron"), "v20.1.0\n").unwrap();
    let out = launch_with_path(&reg, &env, &env.root().join("empty"));
    assert_ran(&out, &format!("{}\n", default.display()));

    let env = TestEnv::new();
    let fnm = env.home().join(".local/share/fnm");
    fake_node(
        &fnm,
        "node-versions/v22.1.0/installation/bin/node",
        "22.1.0",
    );
    let default = fake_node(
        &fnm,
        "node-versions/v20.1.0/installation/bin/node",
        "20.1.0",
    );
    std::fs::create_dir_all(fnm.join("aliases")).unwrap();
    std::os::unix::fs::symlink(
        fnm.join("node-versions/v20.1.0/installation"),
        fnm.join("aliases/default"),
    )
    .unwrap();
    let out = launch_with_path(&reg, &env, &env.root().join("empty"));
    assert_ran(&out, &format!("{}\n", default.display()));
}
