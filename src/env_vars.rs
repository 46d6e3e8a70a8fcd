//! Every environment variable safex reads, in one place: its own (`SAFEX_*`)
//! and the foreign ones it honours to be a drop-in for `npx` and `uvx`
//! (npm's, pip's, uv's, netrc, TLS bundles, version managers, the OS's and
//! MCP clients' directories), and the sets the launched program is given or
//! denied.

/// npm registry base URL; overrides the user config file and `.npmrc`.
pub const SAFEX_NPM_REGISTRY: &str = "SAFEX_NPM_REGISTRY";
/// Python simple-index base URL (PEP 503 / PEP 691). Reserved for `safex uvx`.
pub const SAFEX_PYPI_INDEX: &str = "SAFEX_PYPI_INDEX";
/// Cache root; safex writes only below `<root>/v1/`.
pub const SAFEX_CACHE_DIR: &str = "SAFEX_CACHE_DIR";
/// Per-server state directories (the sandbox's writable places).
pub const SAFEX_STATE_DIR: &str = "SAFEX_STATE_DIR";
/// User config file (TOML).
pub const SAFEX_CONFIG: &str = "SAFEX_CONFIG";
/// Lockfile to read and, in `tofu` mode, to write.
pub const SAFEX_LOCKFILE: &str = "SAFEX_LOCKFILE";
/// `1`/`true`: never touch the network; launch only what is cached.
pub const SAFEX_OFFLINE: &str = "SAFEX_OFFLINE";
/// `tofu` (record on first launch) or `frozen` (refuse roots not in the lock).
pub const SAFEX_LOCK_MODE: &str = "SAFEX_LOCK_MODE";
/// Path of the `node` executable; default: `node` on `PATH`, else the
/// newest install of a version manager (`locate`).
pub const SAFEX_NODE: &str = "SAFEX_NODE";
/// The Python to run PyPI packages with (path or version like `3.12`);
/// default: `python3` on `PATH`, else a version manager's. `--python` wins.
pub const SAFEX_PYTHON: &str = "SAFEX_PYTHON";
/// Extra CA certificates (PEM) added to the system trust store.
pub const SAFEX_CA_FILE: &str = "SAFEX_CA_FILE";

/// Network deadlines (README, "Network deadlines"). Each is seconds (`30`)
/// or a duration (`30s`, `2m`).
///
/// No byte for this long (connecting, waiting for the answer, reading the
/// body): the request fails. Also the window `SAFEX_MIN_RATE` is averaged
/// over. Default 30 s.
pub const SAFEX_STALL_TIMEOUT: &str = "SAFEX_STALL_TIMEOUT";
/// The lowest rate a body may average (bytes per second, over the stall
/// window); `0` turns the floor off. Default 1024.
pub const SAFEX_MIN_RATE: &str = "SAFEX_MIN_RATE";
/// The longest a cold launch may wait on the network in all. Default 120 s.
pub const SAFEX_LAUNCH_TIMEOUT: &str = "SAFEX_LAUNCH_TIMEOUT";
/// The longest `Retry-After` safex waits for. Default 30 s.
pub const SAFEX_RETRY_AFTER_MAX: &str = "SAFEX_RETRY_AFTER_MAX";

/// `1`: notes on stderr about what safex skipped and why (`debug: ...`).
pub const SAFEX_DEBUG: &str = "SAFEX_DEBUG";

/// A policy file for the command-line layer (like `--policy FILE`).
pub const SAFEX_POLICY: &str = "SAFEX_POLICY";
/// The system policy's location, honoured only where no file exists at the
/// fixed admin path (`/etc/safex/policy.toml` and the like).
pub const SAFEX_SYSTEM_POLICY: &str = "SAFEX_SYSTEM_POLICY";
/// The audit log file when no policy layer sets `audit.log`.
pub const SAFEX_AUDIT_LOG: &str = "SAFEX_AUDIT_LOG";

/// Where the version managers a login shell sets up keep their runtimes
/// (`locate`): each overrides its manager's default directory.
pub const NVM_DIR: &str = "NVM_DIR";
pub const FNM_DIR: &str = "FNM_DIR";
pub const VOLTA_HOME: &str = "VOLTA_HOME";
pub const ASDF_DATA_DIR: &str = "ASDF_DATA_DIR";
pub const MISE_DATA_DIR: &str = "MISE_DATA_DIR";
pub const PYENV_ROOT: &str = "PYENV_ROOT";
pub const UV_PYTHON_INSTALL_DIR: &str = "UV_PYTHON_INSTALL_DIR";
/// The XDG data directory (default `~/.local/share`): fnm's, mise's and
/// uv's default homes are below it.
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";

/// pip's and uv's own index settings, honoured when safex's are absent
/// (`pypi::config`).
pub const PIP_INDEX_URL: &str = "PIP_INDEX_URL";
pub const PIP_EXTRA_INDEX_URL: &str = "PIP_EXTRA_INDEX_URL";
/// pip's config file (`/dev/null`: none).
pub const PIP_CONFIG_FILE: &str = "PIP_CONFIG_FILE";
pub const UV_DEFAULT_INDEX: &str = "UV_DEFAULT_INDEX";
pub const UV_INDEX_URL: &str = "UV_INDEX_URL";
pub const UV_INDEX: &str = "UV_INDEX";
/// The netrc file pip and uv read credentials from (default `~/.netrc`).
pub const NETRC: &str = "NETRC";

/// The OS's directories: the home directory, the executable search path,
/// XDG's config locations, Windows' application data.
pub const HOME: &str = "HOME";
pub const PATH: &str = "PATH";
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
pub const XDG_CONFIG_DIRS: &str = "XDG_CONFIG_DIRS";
pub const APPDATA: &str = "APPDATA";
pub const PROGRAM_DATA: &str = "ProgramData";

/// MCP clients' own config directories (`mcp scan`/`pin` find their files
/// there): Claude Code's and Codex's.
pub const CLAUDE_CONFIG_DIR: &str = "CLAUDE_CONFIG_DIR";
pub const CODEX_HOME: &str = "CODEX_HOME";

/// npm's own: the registry (`npm_config_registry`, either case).
pub const NPM_CONFIG_REGISTRY: [&str; 2] = ["npm_config_registry", "NPM_CONFIG_REGISTRY"];
/// npm's own: the user `.npmrc` location (default `~/.npmrc`).
pub const NPM_CONFIG_USERCONFIG: [&str; 2] = ["npm_config_userconfig", "NPM_CONFIG_USERCONFIG"];
/// Extra CA bundles honoured as npm and OpenSSL-based tools do.
pub const EXTRA_CA_VARS: [&str; 2] = ["NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE"];

/// Package-registry credentials of the npm, pip and uv ecosystems (and the
/// publishing tools next to them): never given to the launched program
/// unless the policy's `env.pass` names them exactly. A server that can read
/// a publish token can publish as the developer (the 2025 npm worms did
/// exactly this with `NPM_TOKEN`).
pub const REGISTRY_CREDENTIAL_VARS: &[&str] = &[
    "NPM_TOKEN",
    "NODE_AUTH_TOKEN",
    "UV_PUBLISH_TOKEN",
    "UV_PUBLISH_PASSWORD",
    "UV_PUBLISH_USERNAME",
    "TWINE_PASSWORD",
    "TWINE_USERNAME",
];

/// Variables whose value is a registry or index URL (or a space-separated
/// list of them, uv's entries as `name=URL`) that may carry `user:password@`:
/// the program gets them with the userinfo removed. `npm_config_*registry`
/// (any case, scoped `npm_config_@scope:registry` too) is matched by shape.
pub const INDEX_URL_VARS: &[&str] = &[
    // Proxies: behind an intercepting proxy (the corporate case) a server
    // that makes its own HTTPS calls needs them; their `user:password@` is
    // the user's, not the program's.
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
    "UV_EXTRA_INDEX_URL",
    "UV_FIND_LINKS",
    "UV_PYTHON_INSTALL_MIRROR",
    "UV_PYPY_INSTALL_MIRROR",
];

/// Read a variable, treating an empty value as unset.
pub fn get(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The first of several spellings that is set.
pub fn get_any(names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| get(n))
}

/// Read a variable as the OS holds it (paths need not be UTF-8), an empty
/// value as unset.
pub fn get_os(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// A boolean variable: `1`, `true`, `yes` (any case) are true.
pub fn flag(name: &str) -> bool {
    get(name).is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// Paths to CA bundles: not secrets, and without them a server behind an
/// intercepting proxy fails every HTTPS call with a certificate error. Part
/// of the declared environment's base set.
pub const CA_BUNDLE_VARS: &[&str] = &[
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
    "UV_NATIVE_TLS",
    "GIT_SSL_CAINFO",
    "AWS_CA_BUNDLE",
];

/// The proxy variables (any case: curl, Python and Node read both), passed
/// in the declared environment with their userinfo removed.
pub fn is_proxy_var(name: &str) -> bool {
    ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"]
        .iter()
        .any(|p| p.eq_ignore_ascii_case(name))
}
