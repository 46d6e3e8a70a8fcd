//! macOS: the same permissions as a Seatbelt profile, run through
//! `/usr/bin/sandbox-exec -p <profile>` by absolute path. Deny by default
//! (as the anchors' profiles do), then: read and execute the system, the
//! runtime, the package and declared paths; write the state directory,
//! `TMPDIR` and declared paths; the network as `sandbox.net` says (with an
//! allow-list, outbound only to local ports the spec names). NOT tested on
//! a real Mac: the profile text is checked by snapshot tests here, and
//! `docs/sandbox.md` says so.

use std::fmt::Write;
use std::path::Path;

use super::Spec;

/// Where `sandbox-exec` is; never looked up on `PATH`.
pub const SANDBOX_EXEC: &str = "/usr/bin/sandbox-exec";

/// What every macOS program reads to start (dyld's cache, frameworks,
/// the resolver's and time zone files) and the services it looks up.
const MAC_READ: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/System",
    "/Library/Apple",
    "/Library/Frameworks",
    "/Library/Preferences/SystemConfiguration",
    "/opt/homebrew",
    "/usr/local",
    "/private/etc/ssl",
    "/private/etc/hosts",
    "/private/etc/resolv.conf",
    "/private/etc/passwd",
    "/private/etc/group",
    "/private/etc/localtime",
    "/private/var/db/timezone",
    "/private/var/db/dyld",
    "/dev/urandom",
    "/dev/random",
];

const MACH_SERVICES: &[&str] = &[
    "com.apple.system.opendirectoryd.libinfo",
    "com.apple.system.notification_center",
    "com.apple.logd",
    "com.apple.trustd.agent",
    "com.apple.SystemConfiguration.configd",
    "com.apple.dnssd.service",
];

/// The profile for `spec`.
pub fn profile(spec: &Spec) -> String {
    let mut p = String::from("(version 1)\n(deny default)\n");
    p.push_str("(allow process-exec process-fork)\n");
    p.push_str("(allow signal (target same-sandbox))\n");
    p.push_str("(allow sysctl-read)\n");
    p.push_str("(allow file-read-metadata)\n");
    p.push_str("(allow mach-lookup\n");
    for s in MACH_SERVICES {
        let _ = writeln!(p, "  (global-name {})", quote(s));
    }
    p.push_str(")\n");
    p.push_str("(allow file-read* file-map-executable\n");
    for r in MAC_READ {
        let _ = writeln!(p, "  (subpath {})", quote(r));
    }
    for r in &spec.read {
        let _ = writeln!(p, "  (subpath {})", path(r));
    }
    p.push_str(")\n");
    p.push_str("(allow file-read* file-write*\n");
    for w in &spec.write {
        let _ = writeln!(p, "  (subpath {})", path(w));
    }
    p.push_str("  (literal \"/dev/null\")\n  (literal \"/dev/zero\")\n)\n");
    if spec.inet {
        match &spec.connect {
            None => p.push_str("(allow network-outbound)\n(allow system-socket)\n"),
            Some(ports) => {
                // Outbound only to these local ports (the proxy's, when it runs).
                p.push_str("(allow network-outbound\n");
                for port in ports {
                    let _ = writeln!(p, "  (remote ip \"localhost:{port}\")");
                }
                p.push_str(")\n");
            }
        }
    }
    if spec.bind_any {
        p.push_str("(allow network-bind network-inbound)\n");
    } else if !spec.bind.is_empty() {
        p.push_str("(allow network-bind network-inbound\n");
        for port in &spec.bind {
            let _ = writeln!(p, "  (local ip \"*:{port}\")");
        }
        p.push_str(")\n");
    }
    p
}

fn path(p: &Path) -> String {
    quote(&p.to_string_lossy())
}

/// An SBPL string literal: backslash and double quote escaped; control
/// characters (which no real path needs) replaced, so a path cannot end
/// the literal or the rule.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn spec() -> Spec {
        Spec {
            read: vec![
                PathBuf::from("/Users/u/.nvm/versions/node/v20.19.0"),
                PathBuf::from("/Users/u/Library/Caches/safex/v1/npm/tree/ab12"),
            ],
            write: vec![PathBuf::from(
                "/Users/u/Library/Application Support/safex/state/servers/npm/@acme+srv",
            )],
            devices: vec![],
            bind: vec![],
            bind_any: false,
            connect: None,
            inet: true,
            udp: true,
            enforce: false,
            netns_fd: None,
        }
    }

    #[test]
    fn default_profile() {
        insta::assert_snapshot!(profile(&spec()));
    }

    #[test]
    fn allow_list_and_closed_network() {
        let mut s = spec();
        s.connect = Some(vec![8443]);
        s.bind = vec![3000];
        let text = profile(&s);
        assert!(text.contains("(remote ip \"localhost:8443\")"), "{text}");
        assert!(text.contains("(local ip \"*:3000\")"), "{text}");
        assert!(!text.contains("(allow network-outbound)\n"), "{text}");
        s.inet = false;
        assert!(!profile(&s).contains("network-outbound"));
    }

    #[test]
    fn a_path_cannot_end_its_literal() {
        let mut s = spec();
        s.read = vec![PathBuf::from("/tmp/x\")) (allow default) ((\"")];
        let text = profile(&s);
        assert!(
            text.contains(r#"(subpath "/tmp/x\")) (allow default) ((\"")"#),
            "{text}"
        );
        assert!(!text.contains("\n(allow default)"), "{text}");
    }
}
