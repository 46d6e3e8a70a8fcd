//! `[tools]`: which tools, resources and prompts of a running MCP server
//! a client may see and call, per server and per operating-system user and
//! group; `tools.pin`; and `[mcp]`, the relay's own limits.
//!
//! The lists that apply to one session are every layer's `[tools]` table,
//! its `[tools.servers."<pattern>"]` tables that match the server, and its
//! `[[tools.rule]]` entries that match the server and the user. A name
//! passes when every one of them lets it through: no `deny` entry matches
//! it, and each `allow` list of its kind names it. So lists only narrow,
//! in any layer and in any table, and a deny wins.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::Pattern;
use super::file::Parsed;
use crate::ecosystem::Ecosystem;
use crate::error::Result;

/// What a server exposes that the policy names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tool,
    Resource,
    Prompt,
}

impl Kind {
    fn index(self) -> usize {
        self as usize
    }

    /// The policy keys of this kind's lists.
    pub fn keys(self) -> (&'static str, &'static str) {
        match self {
            Kind::Tool => ("allow", "deny"),
            Kind::Resource => ("allow_resources", "deny_resources"),
            Kind::Prompt => ("allow_prompts", "deny_prompts"),
        }
    }
}

/// `tools.pin`: what a tool whose definition changed since it was pinned
/// gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PinMode {
    Warn,
    Refuse,
}

/// `audit.arguments`: how a call's arguments are written in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ArgsMode {
    Hash,
    Redacted,
    Full,
}

/// The six lists of one table as written.
macro_rules! raw_lists {
    ($(#[$doc:meta])* $name:ident { $($extra:ident: $t:ty),* }) => {
        $(#[$doc])*
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $(pub $extra: $t,)*
            pub allow: Option<Spanned<Vec<String>>>,
            pub deny: Option<Spanned<Vec<String>>>,
            pub allow_resources: Option<Spanned<Vec<String>>>,
            pub deny_resources: Option<Spanned<Vec<String>>>,
            pub allow_prompts: Option<Spanned<Vec<String>>>,
            pub deny_prompts: Option<Spanned<Vec<String>>>,
        }

        impl $name {
            fn lists(&self) -> [(Kind, &Option<Spanned<Vec<String>>>, &Option<Spanned<Vec<String>>>); 3] {
                [
                    (Kind::Tool, &self.allow, &self.deny),
                    (Kind::Resource, &self.allow_resources, &self.deny_resources),
                    (Kind::Prompt, &self.allow_prompts, &self.deny_prompts),
                ]
            }
        }
    };
}

raw_lists!(
    /// `[tools]`.
    RawTools {
        pin: Option<Spanned<String>>,
        servers: Option<BTreeMap<String, RawServerTools>>,
        rule: Option<Vec<RawToolRule>>
    }
);
raw_lists!(
    /// `[tools.servers."<package pattern>"]`.
    RawServerTools {}
);
raw_lists!(
    /// One `[[tools.rule]]`.
    RawToolRule {
        server: Option<Spanned<String>>,
        users: Option<Spanned<Vec<String>>>,
        groups: Option<Spanned<Vec<String>>>
    }
);

/// `[mcp]`: the relay's limits.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMcp {
    pub max_line: Option<Spanned<String>>,
    pub redact: Option<Spanned<bool>>,
}

/// One table's lists, and whom and which server they are for.
#[derive(Debug, Clone)]
pub struct ToolSet {
    /// Where it was written, for messages: `[tools]`,
    /// `[tools.servers."@acme/*"]`, `[[tools.rule]] #2`.
    pub table: String,
    pub server: Option<Pattern>,
    /// Both empty: everyone.
    pub users: Vec<String>,
    pub groups: Vec<String>,
    allow: [Option<Vec<String>>; 3],
    deny: [Vec<String>; 3],
}

/// One layer's tool sets.
#[derive(Debug, Clone)]
pub struct ToolLayer {
    pub name: String,
    pub sets: Vec<ToolSet>,
}

/// The server a decision is about, and who runs it.
pub struct Subject<'a> {
    pub ecosystem: Ecosystem,
    pub package: &'a str,
    pub version: &'a str,
    pub identity: &'a Identity,
}

impl ToolSet {
    fn for_server(&self, s: &Subject<'_>) -> bool {
        self.server
            .as_ref()
            .is_none_or(|p| p.matches(s.ecosystem, s.package, Some(s.version)))
    }

    fn for_user(&self, id: &Identity) -> bool {
        (self.users.is_empty() && self.groups.is_empty())
            || self.users.iter().any(|u| id.is_user(u))
            || self.groups.iter().any(|g| id.in_group(g))
    }
}

/// Why a name is withheld: the layer and table that decided. Every list
/// that applies (its server and its people match) must let the name
/// through: a `deny` entry that matches, or an `allow` list that does not,
/// withholds it.
pub fn denied(layers: &[ToolLayer], s: &Subject<'_>, kind: Kind, name: &str) -> Option<String> {
    let k = kind.index();
    let (allow_key, deny_key) = kind.keys();
    let applies = layers
        .iter()
        .flat_map(|l| l.sets.iter().map(move |t| (l, t)));
    let applies = applies.filter(|(_, t)| t.for_server(s) && t.for_user(s.identity));
    let mut not_allowed = None;
    for (layer, t) in applies {
        if let Some(pat) = t.deny[k].iter().find(|p| glob(p, name)) {
            return Some(format!(
                "denied by `{deny_key}` entry `{pat}` in {} of the {} policy",
                t.table, layer.name
            ));
        }
        if not_allowed.is_none()
            && t.allow[k]
                .as_ref()
                .is_some_and(|a| !a.iter().any(|p| glob(p, name)))
        {
            not_allowed = Some(format!(
                "not in the `{allow_key}` list of {} of the {} policy",
                t.table, layer.name
            ));
        }
    }
    not_allowed
}

/// `*` matches any run of characters; names compare exactly otherwise
/// (MCP tool names are case-sensitive).
fn glob(pat: &str, name: &str) -> bool {
    super::glob(pat, name)
}

/// Read one layer's `[tools]` into sets (its `pin` is merged apart).
pub fn layer_sets(parsed: &Parsed, name: &str, t: &RawTools) -> Result<ToolLayer> {
    let mut sets = vec![set(parsed, "[tools]".into(), "tools", t.lists())?];
    for (pat, s) in t.servers.iter().flatten() {
        let table = format!("[tools.servers.\"{pat}\"]");
        let key = format!("tools.servers.\"{pat}\"");
        let mut one = set(parsed, table, &key, s.lists())?;
        let p = Pattern::parse(pat).ok_or_else(|| {
            let span = s
                .lists()
                .iter()
                .find_map(|(_, a, d)| a.as_ref().or(d.as_ref()).map(Spanned::span))
                .unwrap_or(0..0);
            parsed.bad(
                "tools.servers",
                span,
                &format!(
                    "has an invalid package pattern `{}`",
                    crate::redact::shown(pat)
                ),
            )
        })?;
        one.server = Some(p);
        sets.push(one);
    }
    for (i, r) in t.rule.iter().flatten().enumerate() {
        let table = format!("[[tools.rule]] #{}", i + 1);
        let mut one = set(parsed, table, "tools.rule", r.lists())?;
        let names = |v: &Option<Spanned<Vec<String>>>| -> Vec<String> {
            v.as_ref()
                .map(|v| v.get_ref().iter().map(|s| s.trim().to_owned()).collect())
                .unwrap_or_default()
        };
        one.users = names(&r.users);
        one.groups = names(&r.groups);
        let span = r
            .users
            .as_ref()
            .or(r.groups.as_ref())
            .map(Spanned::span)
            .or_else(|| r.server.as_ref().map(Spanned::span))
            .or_else(|| {
                r.lists()
                    .iter()
                    .find_map(|(_, a, d)| a.as_ref().or(d.as_ref()).map(Spanned::span))
            })
            .unwrap_or(0..0);
        if one.users.is_empty() && one.groups.is_empty() {
            return Err(parsed.bad(
                "tools.rule",
                span,
                "names no `users` or `groups`; a list for everyone goes in `[tools]` or `[tools.servers.\"<package>\"]`",
            ));
        }
        if let Some(bad) = one.users.iter().chain(&one.groups).find(|n| n.is_empty()) {
            return Err(parsed.bad(
                "tools.rule",
                span,
                &format!("has an empty user or group name `{bad}`"),
            ));
        }
        if let Some(v) = &r.server {
            one.server = Some(Pattern::parse(v.get_ref()).ok_or_else(|| {
                parsed.bad(
                    "tools.rule.server",
                    v.span(),
                    &format!(
                        "has an invalid package pattern `{}`",
                        crate::redact::shown(v.get_ref())
                    ),
                )
            })?);
        }
        sets.push(one);
    }
    sets.retain(|s| s.allow.iter().any(Option::is_some) || s.deny.iter().any(|d| !d.is_empty()));
    Ok(ToolLayer {
        name: name.to_owned(),
        sets,
    })
}

type RawLists<'a> = [(
    Kind,
    &'a Option<Spanned<Vec<String>>>,
    &'a Option<Spanned<Vec<String>>>,
); 3];

fn set(parsed: &Parsed, table: String, key: &str, lists: RawLists<'_>) -> Result<ToolSet> {
    let mut out = ToolSet {
        table,
        server: None,
        users: Vec::new(),
        groups: Vec::new(),
        allow: [None, None, None],
        deny: [Vec::new(), Vec::new(), Vec::new()],
    };
    for (kind, allow, deny) in lists {
        let (ak, dk) = kind.keys();
        if let Some(v) = allow {
            out.allow[kind.index()] = Some(names(parsed, &format!("{key}.{ak}"), v)?);
        }
        if let Some(v) = deny {
            out.deny[kind.index()] = names(parsed, &format!("{key}.{dk}"), v)?;
        }
    }
    Ok(out)
}

/// Tool, resource or prompt name patterns: not empty, no control
/// characters.
fn names(parsed: &Parsed, key: &str, v: &Spanned<Vec<String>>) -> Result<Vec<String>> {
    v.get_ref()
        .iter()
        .map(|s| {
            if s.is_empty() || s.chars().any(char::is_control) {
                Err(parsed.bad(
                    key,
                    v.span(),
                    &format!("has an invalid name pattern `{}`", crate::redact::shown(s)),
                ))
            } else {
                Ok(s.clone())
            }
        })
        .collect()
}

/// Who runs safex, as the operating system says (the real uid and groups;
/// never `USER`, which anyone can set): names from `/etc/passwd` and
/// `/etc/group`, then `getent` for directory accounts, and the numbers.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub user: Option<String>,
    pub uid: u32,
    pub groups: Vec<String>,
    pub gids: Vec<u32>,
}

impl Identity {
    pub fn current() -> Identity {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |f: &str| -> Vec<u32> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(f))
                .map(|v| {
                    v.split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        let uid = field("Uid:").first().copied().unwrap_or(u32::MAX);
        let mut gids = field("Gid:").into_iter().take(1).collect::<Vec<_>>();
        for g in field("Groups:") {
            if !gids.contains(&g) {
                gids.push(g);
            }
        }
        let user = account("passwd", "/etc/passwd", uid);
        let groups = gids
            .iter()
            .filter_map(|g| account("group", "/etc/group", *g))
            .collect();
        Identity {
            user,
            uid,
            groups,
            gids,
        }
    }

    fn is_user(&self, name: &str) -> bool {
        self.user.as_deref() == Some(name) || name.parse() == Ok(self.uid)
    }

    fn in_group(&self, name: &str) -> bool {
        self.groups.iter().any(|g| g == name) || name.parse().is_ok_and(|n| self.gids.contains(&n))
    }
}

/// The name of `id` in `file` (`name:x:id:…`), else as `getent <db>` says.
fn account(db: &str, file: &str, id: u32) -> Option<String> {
    let from_line = |l: &str| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)?.parse() == Ok(id)).then(|| name.to_owned())
    };
    if let Some(n) = std::fs::read_to_string(file)
        .ok()
        .and_then(|t| t.lines().find_map(from_line))
    {
        return Some(n);
    }
    let out = std::process::Command::new("getent")
        .args([db, &id.to_string()])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    String::from_utf8(out.stdout)
        .ok()?
        .lines()
        .find_map(from_line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(name: &str, text: &str) -> ToolLayer {
        let parsed = Parsed::parse(text.into(), name).unwrap();
        let t = parsed.raw.tools.as_ref().unwrap();
        layer_sets(&parsed, name, t).unwrap()
    }

    fn who(user: &str, groups: &[&str]) -> Identity {
        Identity {
            user: Some(user.into()),
            uid: 1000,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            gids: vec![1000],
        }
    }

    fn check(layers: &[ToolLayer], id: &Identity, pkg: &str, kind: Kind, name: &str) -> bool {
        let s = Subject {
            ecosystem: Ecosystem::Npm,
            package: pkg,
            version: "1.2.3",
            identity: id,
        };
        denied(layers, &s, kind, name).is_none()
    }

    #[test]
    fn deny_wins_and_allow_narrows() {
        let l = [layer(
            "user",
            "[tools]\ndeny = [\"delete_*\"]\n[tools.servers.\"@acme/*\"]\nallow = [\"read_*\", \"delete_all\"]\n",
        )];
        let me = who("ann", &[]);
        assert!(check(&l, &me, "@acme/files", Kind::Tool, "read_file"));
        assert!(!check(&l, &me, "@acme/files", Kind::Tool, "write_file"));
        assert!(
            !check(&l, &me, "@acme/files", Kind::Tool, "delete_all"),
            "deny wins"
        );
        assert!(check(&l, &me, "other", Kind::Tool, "write_file"));
        assert!(!check(&l, &me, "other", Kind::Tool, "delete_x"));
        assert!(
            check(&l, &me, "@acme/files", Kind::Prompt, "anything"),
            "no prompt lists"
        );
    }

    #[test]
    fn rules_narrow_for_their_people_only() {
        let l = [layer(
            "system",
            "[tools.servers.\"gh-mcp\"]\nallow = [\"get_*\", \"create_release\"]\n\
             [[tools.rule]]\nserver = \"gh-mcp\"\ngroups = [\"contractors\"]\nallow = [\"get_issue\"]\n\
             [[tools.rule]]\nusers = [\"bob\"]\ndeny = [\"get_secret\"]\n\
             [[tools.rule]]\ngroups = [\"eng\"]\nallow_resources = [\"file:///repo/*\"]\n",
        )];
        let (ann, con, bob) = (
            who("ann", &["eng"]),
            who("carl", &["contractors"]),
            who("bob", &[]),
        );
        assert!(check(&l, &ann, "gh-mcp", Kind::Tool, "create_release"));
        assert!(!check(&l, &ann, "gh-mcp", Kind::Tool, "delete_repo"));
        assert!(check(&l, &con, "gh-mcp", Kind::Tool, "get_issue"));
        assert!(!check(&l, &con, "gh-mcp", Kind::Tool, "get_pull"));
        assert!(!check(&l, &con, "gh-mcp", Kind::Tool, "create_release"));
        assert!(
            check(&l, &con, "other", Kind::Tool, "anything"),
            "the rule is for gh-mcp"
        );
        assert!(check(&l, &ann, "gh-mcp", Kind::Tool, "get_secret"));
        assert!(!check(&l, &bob, "gh-mcp", Kind::Tool, "get_secret"));
        assert!(check(&l, &ann, "x", Kind::Resource, "file:///repo/a"));
        assert!(!check(&l, &ann, "x", Kind::Resource, "file:///etc/passwd"));
        assert!(
            check(&l, &bob, "x", Kind::Resource, "file:///etc/passwd"),
            "not eng"
        );
        let by_number = Identity {
            user: None,
            uid: 4242,
            groups: vec![],
            gids: vec![77],
        };
        let l = [layer(
            "u",
            "[[tools.rule]]\nusers = [\"4242\"]\ndeny = [\"x\"]\n[[tools.rule]]\ngroups = [\"77\"]\ndeny = [\"y\"]\n",
        )];
        assert!(!check(&l, &by_number, "p", Kind::Tool, "x"));
        assert!(!check(&l, &by_number, "p", Kind::Tool, "y"));
        assert!(check(&l, &by_number, "p", Kind::Tool, "z"));
    }

    #[test]
    fn every_layer_must_allow() {
        let l = [
            layer("system", "[tools]\nallow = [\"a*\"]\n"),
            layer("user", "[tools]\nallow = [\"ab*\", \"zz\"]\n"),
        ];
        let me = who("ann", &[]);
        assert!(check(&l, &me, "p", Kind::Tool, "abc"));
        assert!(!check(&l, &me, "p", Kind::Tool, "ac"));
        assert!(
            !check(&l, &me, "p", Kind::Tool, "zz"),
            "a lower layer cannot widen"
        );
    }

    #[test]
    fn bad_tables_are_named() {
        for (text, needle) in [
            (
                "[tools]\n[[tools.rule]]\nallow = [\"x\"]\n",
                "names no `users` or `groups`",
            ),
            (
                "[tools]\ndeny = [\"\"]\n",
                "`tools.deny` has an invalid name pattern",
            ),
            (
                "[tools.servers.\"x@\"]\ndeny = [\"a\"]\n",
                "invalid package pattern",
            ),
            (
                "[[tools.rule]]\nusers = [\"a\"]\nserver = \"\"\n",
                "`tools.rule.server`",
            ),
        ] {
            let parsed = Parsed::parse(text.into(), "p").unwrap();
            let e = layer_sets(&parsed, "p", parsed.raw.tools.as_ref().unwrap()).unwrap_err();
            assert!(e.message.contains(needle), "{text}: {}", e.message);
        }
        assert!(Parsed::parse("[tools]\nallowed = []\n".into(), "p").is_err());
    }

    #[test]
    fn identity_is_the_processes() {
        let id = Identity::current();
        let uid = rustix::process::getuid().as_raw();
        assert_eq!(id.uid, uid);
        assert!(id.is_user(&uid.to_string()));
        if uid == 0 {
            assert_eq!(id.user.as_deref(), Some("root"));
            assert!(id.in_group("root"), "{id:?}");
        }
    }
}
