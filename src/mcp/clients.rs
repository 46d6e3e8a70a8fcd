//! Where each MCP client keeps its server list, per OS, and how to read it.
//!
//! With `--root DIR`, DIR is the home directory and the OS's own locations
//! (`%APPDATA%`, `~/Library/Application Support`, `$XDG_CONFIG_HOME`) are
//! derived from it, never from this process's environment: an admin scanning
//! a user's tree, or a test, sees exactly that tree.

use std::path::{Path, PathBuf};

use crate::mcp::formats::jsonc::{self, Dialect};
use crate::mcp::formats::{toml, yaml};
use crate::mcp::model::Server;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Client {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    VsCode,
    Windsurf,
    Cline,
    Zed,
    Continue,
    Codex,
    Gemini,
    Other,
}

impl Client {
    pub fn id(self) -> &'static str {
        match self {
            Client::ClaudeDesktop => "claude-desktop",
            Client::ClaudeCode => "claude-code",
            Client::Cursor => "cursor",
            Client::VsCode => "vscode",
            Client::Windsurf => "windsurf",
            Client::Cline => "cline",
            Client::Zed => "zed",
            Client::Continue => "continue",
            Client::Codex => "codex",
            Client::Gemini => "gemini",
            Client::Other => "other",
        }
    }

    /// The product's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Client::ClaudeDesktop => "Claude Desktop",
            Client::ClaudeCode => "Claude Code",
            Client::Cursor => "Cursor",
            Client::VsCode => "VS Code",
            Client::Windsurf => "Windsurf",
            Client::Cline => "Cline",
            Client::Zed => "Zed",
            Client::Continue => "Continue",
            Client::Codex => "Codex",
            Client::Gemini => "Gemini CLI",
            Client::Other => "an unknown client",
        }
    }

    /// How the client reads its JSON files. VS Code and Zed read JSONC;
    /// Gemini CLI strips comments, then uses `JSON.parse`; Claude Desktop,
    /// Claude Code and Cline use `JSON.parse` as it is. A client not known
    /// to be lenient (Cursor, Windsurf, Continue) is taken as strict: a file
    /// it may not read is then reported, never rewritten. Files of an
    /// unknown client are read leniently (nothing to say they are wrong).
    pub fn dialect(self) -> Dialect {
        match self {
            Client::VsCode | Client::Zed | Client::Other => Dialect::Jsonc,
            Client::Gemini => Dialect::Comments,
            Client::ClaudeDesktop
            | Client::ClaudeCode
            | Client::Cursor
            | Client::Windsurf
            | Client::Cline
            | Client::Continue
            | Client::Codex => Dialect::Strict,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Toml,
    Yaml,
}

/// A config file to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub client: Client,
    pub path: PathBuf,
    pub format: Format,
    /// The scope its top-level servers have (`user`, `project`, or empty).
    pub scope: &'static str,
}

pub fn format_of(path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => Format::Toml,
        Some("yaml" | "yml") => Format::Yaml,
        _ => Format::Json,
    }
}

/// Why a config file's servers could not be read, in the two shapes a
/// report puts after the file's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unread {
    /// The text is not what its client accepts, said as what the file is:
    /// "not valid JSON for Claude Desktop: trailing comma at line 3 col 14".
    Invalid(String),
    /// Anything else (I/O, not UTF-8, the format's own parse error), said
    /// as why the file cannot be read.
    Failed(String),
}

impl std::fmt::Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unread::Invalid(why) | Unread::Failed(why) => f.write_str(why),
        }
    }
}

/// Parse a file's text into its server entries, as its client reads it.
pub fn read(target: &Target, text: &str) -> Result<Vec<Server>, Unread> {
    let scope = target.scope;
    let mut servers = match target.format {
        Format::Json => {
            let dialect = target.client.dialect();
            let root = jsonc::parse_as(text, dialect).map_err(|e| match dialect {
                Dialect::Jsonc => Unread::Failed(e),
                _ => Unread::Invalid(format!("not valid JSON for {}: {e}", target.client.name())),
            })?;
            jsonc::servers(text, &root, scope)
        }
        Format::Toml => toml::servers(text).map_err(Unread::Failed)?,
        Format::Yaml => yaml::servers(text).map_err(Unread::Failed)?,
    };
    for s in &mut servers {
        if s.scope.is_empty() {
            s.scope = scope.to_owned();
        }
    }
    Ok(servers)
}

/// The OS-specific base directories, derived from a home directory.
struct Dirs {
    home: PathBuf,
    /// `%APPDATA%`, `~/Library/Application Support`, `~/.config`.
    app_data: PathBuf,
    /// Zed and Claude Desktop on Linux: `~/.config`; Windows: `%APPDATA%`.
    config: PathBuf,
}

fn dirs(root: Option<&Path>) -> Option<Dirs> {
    let from_env = root.is_none();
    let home = match root {
        Some(r) => r.to_path_buf(),
        None => directories::BaseDirs::new()?.home_dir().to_path_buf(),
    };
    let env_dir = |var: &str| {
        from_env
            .then(|| std::env::var_os(var))
            .flatten()
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let (app_data, config) = if cfg!(windows) {
        let a = env_dir(crate::env_vars::APPDATA)
            .unwrap_or_else(|| home.join("AppData").join("Roaming"));
        (a.clone(), a)
    } else if cfg!(target_os = "macos") {
        (
            home.join("Library").join("Application Support"),
            env_dir("XDG_CONFIG_HOME").unwrap_or_else(|| home.join(".config")),
        )
    } else {
        let c = env_dir("XDG_CONFIG_HOME").unwrap_or_else(|| home.join(".config"));
        (c.clone(), c)
    };
    Some(Dirs {
        home,
        app_data,
        config,
    })
}

/// Every known config location that exists under the home directory
/// (`root`, or this user's), then the project-level files of each project
/// Claude Code knows about and, without `root`, of the current directory.
pub fn discover(root: Option<&Path>) -> Vec<Target> {
    let Some(d) = dirs(root) else {
        return Vec::new();
    };
    let h = &d.home;
    let mut c: Vec<(Client, PathBuf, &'static str)> = Vec::new();
    c.push((
        Client::ClaudeDesktop,
        d.app_data.join("Claude/claude_desktop_config.json"),
        "",
    ));
    if cfg!(target_os = "macos") {
        c.push((
            Client::ClaudeDesktop,
            d.config.join("Claude/claude_desktop_config.json"),
            "",
        ));
    }
    let claude_dir = (root.is_none())
        .then(|| std::env::var_os(crate::env_vars::CLAUDE_CONFIG_DIR))
        .flatten()
        .map(PathBuf::from);
    c.push((Client::ClaudeCode, h.join(".claude.json"), "user"));
    if let Some(dir) = &claude_dir {
        c.push((Client::ClaudeCode, dir.join(".claude.json"), "user"));
    }
    c.push((Client::Cursor, h.join(".cursor/mcp.json"), ""));
    for code in ["Code", "Code - Insiders", "VSCodium", "Cursor", "Windsurf"] {
        let user = d.app_data.join(code).join("User");
        if code.starts_with("Code") {
            c.push((Client::VsCode, user.join("mcp.json"), ""));
            for p in sorted_dirs(&user.join("profiles")) {
                c.push((Client::VsCode, p.join("mcp.json"), ""));
            }
        }
        c.push((
            Client::Cline,
            user.join("globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json"),
            "",
        ));
    }
    c.push((
        Client::Windsurf,
        h.join(".codeium/windsurf/mcp_config.json"),
        "",
    ));
    c.push((Client::Windsurf, h.join(".codeium/mcp_config.json"), ""));
    c.push((Client::Zed, d.config.join("zed/settings.json"), ""));
    c.push((Client::Continue, h.join(".continue/config.yaml"), ""));
    for f in sorted_files(&h.join(".continue/mcpServers")) {
        c.push((Client::Continue, f, ""));
    }
    let codex_home = (root.is_none())
        .then(|| std::env::var_os(crate::env_vars::CODEX_HOME))
        .flatten()
        .map(PathBuf::from)
        .unwrap_or_else(|| h.join(".codex"));
    c.push((Client::Codex, codex_home.join("config.toml"), ""));
    c.push((Client::Gemini, h.join(".gemini/settings.json"), ""));

    let mut projects = claude_projects(&h.join(".claude.json"));
    if root.is_none()
        && let Ok(cwd) = std::env::current_dir()
    {
        projects.push(cwd);
    }
    for p in &projects {
        c.extend(project_files(p));
    }
    let mut out: Vec<Target> = Vec::new();
    for (client, path, scope) in c {
        if path.is_file() && !out.iter().any(|t| same_file(&t.path, &path)) {
            out.push(Target {
                client,
                format: format_of(&path),
                path,
                scope,
            });
        }
    }
    out
}

/// The files a project directory may hold.
fn project_files(p: &Path) -> Vec<(Client, PathBuf, &'static str)> {
    let mut c = vec![
        (Client::ClaudeCode, p.join(".mcp.json"), "project"),
        (Client::Cursor, p.join(".cursor/mcp.json"), "project"),
        (Client::VsCode, p.join(".vscode/mcp.json"), "project"),
        (Client::Zed, p.join(".zed/settings.json"), "project"),
        (Client::Codex, p.join(".codex/config.toml"), "project"),
        (Client::Gemini, p.join(".gemini/settings.json"), "project"),
    ];
    for f in sorted_files(&p.join(".continue/mcpServers")) {
        c.push((Client::Continue, f, "project"));
    }
    c
}

/// The project directories Claude Code has a local scope for.
fn claude_projects(claude_json: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(claude_json) else {
        return Vec::new();
    };
    let Ok(jsonc::Node::Object(top, _)) = jsonc::parse(&text) else {
        return Vec::new();
    };
    match top.iter().find(|(k, _)| k == "projects") {
        Some((_, jsonc::Node::Object(m, _))) => m
            .iter()
            .map(|(k, _)| PathBuf::from(k))
            .filter(|p| p.is_dir())
            .collect(),
        _ => Vec::new(),
    }
}

/// The client a file given with `--config` belongs to, from its path.
pub fn guess(path: &Path) -> Target {
    let s = path.to_string_lossy().replace('\\', "/");
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let (client, scope) = if name == "claude_desktop_config.json" {
        (Client::ClaudeDesktop, "")
    } else if name == ".claude.json" {
        (Client::ClaudeCode, "user")
    } else if name == ".mcp.json" {
        (Client::ClaudeCode, "project")
    } else if name == "cline_mcp_settings.json" {
        (Client::Cline, "")
    } else if name == "mcp_config.json" {
        (Client::Windsurf, "")
    } else if s.contains("/.cursor/") {
        (Client::Cursor, "")
    } else if s.contains("/.vscode/") || s.contains("/User/") && name == "mcp.json" {
        (Client::VsCode, "")
    } else if s.contains("/zed/") || s.contains("/.zed/") || s.contains("/Zed/") {
        (Client::Zed, "")
    } else if s.contains("/.gemini/") || s.contains("gemini-cli") {
        (Client::Gemini, "")
    } else if s.contains("/.continue/") || matches!(format_of(path), Format::Yaml) {
        (Client::Continue, "")
    } else if s.contains("/.codex/") || matches!(format_of(path), Format::Toml) {
        (Client::Codex, "")
    } else {
        (Client::Other, "")
    };
    Target {
        client,
        path: path.to_path_buf(),
        format: format_of(path),
        scope,
    }
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
        })
        .collect();
    v.sort();
    v
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(client: Client, format: Format) -> Target {
        Target {
            client,
            path: PathBuf::from("config"),
            format,
            scope: "user",
        }
    }

    #[test]
    fn a_file_its_client_refuses_is_invalid_anything_else_failed() {
        let strict = target(Client::ClaudeDesktop, Format::Json);
        assert_eq!(
            read(&strict, "{\"mcpServers\": {},}"),
            Err(Unread::Invalid(
                "not valid JSON for Claude Desktop: trailing comma at line 1 col 18".into()
            ))
        );
        let jsonc = target(Client::VsCode, Format::Json);
        assert!(
            matches!(read(&jsonc, "{"), Err(Unread::Failed(_))),
            "{:?}",
            read(&jsonc, "{")
        );
        let toml = target(Client::Codex, Format::Toml);
        assert!(
            matches!(read(&toml, "[mcp_servers"), Err(Unread::Failed(_))),
            "{:?}",
            read(&toml, "[mcp_servers")
        );
        assert_eq!(read(&strict, "{\"mcpServers\": {}}"), Ok(Vec::new()));
    }
}
