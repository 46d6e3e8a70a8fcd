//! Wheel file names (PEP 427) and the compatibility tags (PEP 425) of one
//! interpreter, ordered most specific first as `packaging.tags.sys_tags()`
//! orders them, so that "the best wheel" means what it means to pip and uv.
//!
//! Index pages are untrusted input: a file name that does not parse is an
//! unsafe package, never a guess. Names are compared PEP 503-normalized.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use pep440_rs::Version;

use crate::error::{Error, Result};

/// A parsed wheel file name: `{name}-{ver}(-{build})?-{py}-{abi}-{plat}.whl`.
/// Tag sets are split on `.` (PEP 425 compressed tag sets) and lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelName {
    /// PEP 503 normalized.
    pub name: String,
    pub version: Version,
    pub build: Option<String>,
    pub python: Vec<String>,
    pub abi: Vec<String>,
    pub platform: Vec<String>,
}

impl WheelName {
    pub fn parse(filename: &str) -> Result<WheelName> {
        let malformed = |why: &str| {
            Error::unsafe_pkg(format!(
                "`{}` is not a valid wheel file name: {why}",
                filename.escape_debug()
            ))
            .with_hint("a wheel is named `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl` (PEP 427); the index may be broken or hostile")
        };
        let stem = filename
            .strip_suffix(".whl")
            .ok_or_else(|| malformed("it does not end in `.whl`"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, build, tags) = match parts.as_slice() {
            [n, v, py, abi, plat] => (*n, *v, None, [*py, *abi, *plat]),
            [n, v, b, py, abi, plat] => (*n, *v, Some(*b), [*py, *abi, *plat]),
            _ => return Err(malformed("it has neither 5 nor 6 `-`-separated parts")),
        };
        if !valid_project_name(name) {
            return Err(malformed("the project name is not valid"));
        }
        let version =
            Version::from_str(version).map_err(|_| malformed("the version is not PEP 440"))?;
        if let Some(b) = build
            && !(b.starts_with(|c: char| c.is_ascii_digit())
                && b.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(malformed(
                "the build tag is not a digit followed by letters, digits or `_`",
            ));
        }
        let split = |set: &str| {
            set.split('.')
                .map(|t| {
                    if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        Ok(t.to_ascii_lowercase())
                    } else {
                        Err(malformed(
                            "a compatibility tag is empty or has odd characters",
                        ))
                    }
                })
                .collect::<Result<Vec<String>>>()
        };
        let [python, abi, platform] = tags;
        let (python, abi, platform) = (split(python)?, split(abi)?, split(platform)?);
        Ok(WheelName {
            name: normalize(name),
            version,
            build: build.map(str::to_owned),
            python,
            abi,
            platform,
        })
    }
}

const SDIST_SUFFIXES: [&str; 6] = [".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz", ".tar"];

fn sdist_stem(filename: &str) -> Option<&str> {
    let lower = filename.to_ascii_lowercase();
    SDIST_SUFFIXES
        .iter()
        .find(|s| lower.ends_with(*s))
        .map(|s| &filename[..filename.len() - s.len()])
}

/// A source distribution (which safex never builds), by its extension.
pub fn is_sdist(filename: &str) -> bool {
    sdist_stem(filename).is_some()
}

/// The version of `project`'s sdist `filename`, read as pip reads it: the
/// name ends at the first `-` before which the text normalizes to `project`
/// (the stem of `cffi-1.0.2-2.tar.gz` is `cffi` + `1.0.2-2`, PEP 440's
/// 1.0.2.post2). `None` for a file whose name does not start with the
/// project's, or whose rest is no PEP 440 version (`regex-2013-02-16`,
/// `mpmath-all-0.17`): pip and uv skip those, and so does safex, since a
/// project page of the main index keeps such files from before PEP 440.
pub fn sdist_version(filename: &str, project: &str) -> Option<Version> {
    let stem = sdist_stem(filename)?;
    let (at, _) = stem
        .match_indices('-')
        .find(|(i, _)| normalize(&stem[..*i]) == project)?;
    Version::from_str(&stem[at + 1..]).ok()
}

/// The characters of `name` as PEP 503 normalizes it, without building the
/// string: a run of `-`, `_`, `.` is one `-`, letters are lowercased.
fn normalized_chars(name: &str) -> impl Iterator<Item = char> + '_ {
    let mut in_run = false;
    name.chars().flat_map(move |c| {
        let sep = matches!(c, '-' | '_' | '.');
        let first_of_run = sep && !in_run;
        in_run = sep;
        let one = first_of_run.then_some('-');
        let lower = (!sep).then(|| c.to_lowercase()).into_iter().flatten();
        one.into_iter().chain(lower)
    })
}

/// Whether two names are the same project under PEP 503 (no allocation:
/// the policy compares every package of a tree on the warm path).
pub fn same_name(a: &str, b: &str) -> bool {
    normalized_chars(a).eq(normalized_chars(b))
}

/// PEP 503 normalization: lowercase, each run of `-`, `_`, `.` becomes `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

/// The PEP 508 name rule: `^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$`, any case.
pub fn valid_project_name(name: &str) -> bool {
    let b = name.as_bytes();
    let (Some(first), Some(last)) = (b.first(), b.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Os {
    /// The C library versions found (`(major, minor)`); a musl system has no glibc.
    Linux {
        glibc: Option<(u16, u16)>,
        musl: Option<(u16, u16)>,
    },
    Macos {
        major: u16,
        minor: u16,
    },
    Windows,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: Os,
    /// As the interpreter reports `platform.machine()`: `x86_64`, `aarch64`,
    /// `arm64`, `i686`, `AMD64`, ... A 32-bit interpreter on a 64-bit kernel
    /// should report its own architecture (`i686`, `x86`).
    pub arch: String,
}

/// Architectures that manylinux covers (PEP 600 and `packaging._manylinux`).
const MANYLINUX_ARCHS: [&str; 9] = [
    "x86_64",
    "i686",
    "aarch64",
    "armv7l",
    "ppc64",
    "ppc64le",
    "s390x",
    "loongarch64",
    "riscv64",
];
/// The last minor of each glibc major before the current one (only 2.x exists).
const LEGACY_MANYLINUX: [((u16, u16), &str); 3] = [
    ((2, 17), "manylinux2014"),
    ((2, 12), "manylinux2010"),
    ((2, 5), "manylinux1"),
];

/// Platform tags, most specific first, as `packaging.tags.platform_tags()`.
pub fn platform_tags(p: &Platform) -> Vec<String> {
    let mut out = Vec::new();
    match &p.os {
        Os::Linux { glibc, musl } => {
            let arch = match p.arch.to_ascii_lowercase().as_str() {
                "amd64" => "x86_64".to_owned(),
                "arm64" => "aarch64".to_owned(),
                a => a.replace(['-', '.', ' '], "_"),
            };
            if let Some((2, current)) = *glibc
                && MANYLINUX_ARCHS.contains(&arch.as_str())
            {
                // manylinux1 (glibc 2.5) and manylinux2010 exist only for x86;
                // the other architectures start at manylinux2014 (2.17).
                let oldest = if matches!(arch.as_str(), "x86_64" | "i686") {
                    5
                } else {
                    17
                };
                for minor in (oldest..=current).rev() {
                    out.push(format!("manylinux_2_{minor}_{arch}"));
                    if let Some((_, legacy)) =
                        LEGACY_MANYLINUX.iter().find(|(v, _)| *v == (2, minor))
                    {
                        out.push(format!("{legacy}_{arch}"));
                    }
                }
            }
            if let Some((major, current)) = *musl {
                for minor in (0..=current).rev() {
                    out.push(format!("musllinux_{major}_{minor}_{arch}"));
                }
            }
            out.push(format!("linux_{arch}"));
        }
        Os::Macos { major, minor } => {
            let arch = match p.arch.to_ascii_lowercase().as_str() {
                "aarch64" => "arm64".to_owned(),
                "amd64" => "x86_64".to_owned(),
                a => a.to_owned(),
            };
            let mut push = |maj: u16, min: u16, formats: Vec<&str>| {
                for f in formats {
                    out.push(format!("macosx_{maj}_{min}_{f}"));
                }
            };
            if *major == 10 {
                for m in (0..=*minor).rev() {
                    push(10, m, mac_binary_formats((10, m), &arch));
                }
            } else if *major >= 11 {
                // From macOS 11 the major number is the yearly release; wheels
                // are tagged `<major>_0`. Older 10.x binaries still run on
                // x86_64; arm64 exists from 11.0, so before that only the
                // x86_64 half of a `universal2` wheel can be what matters.
                for maj in (11..=*major).rev() {
                    push(maj, 0, mac_binary_formats((maj, 0), &arch));
                }
                for m in (4..=16).rev() {
                    if arch == "x86_64" {
                        push(10, m, mac_binary_formats((10, m), &arch));
                    } else {
                        push(10, m, vec!["universal2"]);
                    }
                }
            }
        }
        Os::Windows => {
            let tag = match p.arch.to_ascii_lowercase().as_str() {
                "amd64" | "x86_64" | "x64" => "win_amd64".to_owned(),
                "x86" | "i386" | "i686" | "win32" => "win32".to_owned(),
                "arm64" | "aarch64" => "win_arm64".to_owned(),
                a => format!("win_{}", a.replace(['-', '.', ' '], "_")),
            };
            out.push(tag);
        }
    }
    out
}

/// The binary formats a macOS release runs for an architecture, as
/// `packaging.tags._mac_binary_formats`: fat and universal builds included.
fn mac_binary_formats(version: (u16, u16), arch: &str) -> Vec<&str> {
    let mut formats = vec![arch];
    match arch {
        "x86_64" => {
            if version < (10, 4) {
                return Vec::new();
            }
            formats.extend(["intel", "fat64", "fat32"]);
        }
        "i386" => {
            if version < (10, 4) {
                return Vec::new();
            }
            formats.extend(["intel", "fat32", "fat"]);
        }
        "ppc64" => {
            if !((10, 4)..=(10, 5)).contains(&version) {
                return Vec::new();
            }
            formats.push("fat64");
        }
        "ppc" => {
            if version > (10, 6) {
                return Vec::new();
            }
            formats.extend(["fat32", "fat"]);
        }
        _ => {}
    }
    if matches!(arch, "arm64" | "x86_64") {
        formats.push("universal2");
    }
    if matches!(arch, "x86_64" | "i386" | "ppc64" | "ppc" | "intel") {
        formats.push("universal");
    }
    formats
}

/// One `python-abi-platform` triple.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag {
    pub python: String,
    pub abi: String,
    pub platform: String,
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.python, self.abi, self.platform)
    }
}

/// The tags one interpreter supports, best first.
#[derive(Debug, Clone)]
pub struct Tags {
    order: Vec<Tag>,
    rank: HashMap<Tag, usize>,
}

/// PyPy's ABI tag carries PyPy's own version (`pypy310_pp73`). 7.3 has been
/// the only PyPy 3 line since 2019, and `Tags::new` is not told the
/// implementation version, so it is assumed.
const PYPY_ABI_VERSION: &str = "pp73";

impl Tags {
    /// The supported tags of an interpreter, ordered as
    /// `packaging.tags.sys_tags()` orders them.
    pub fn new(
        implementation: &str,
        major: u8,
        minor: u8,
        abi_flags: &str,
        platform: &Platform,
    ) -> Tags {
        let plats = platform_tags(platform);
        let mut order = Vec::new();
        let mut push = |py: &str, abi: &str, plat: &str| {
            order.push(Tag {
                python: py.to_owned(),
                abi: abi.to_owned(),
                platform: plat.to_owned(),
            });
        };
        let impl_lower = implementation.to_ascii_lowercase();
        let nodot = format!("{major}{minor}");
        let compat_interp = match impl_lower.as_str() {
            "cpython" | "cp" => {
                let interp = format!("cp{nodot}");
                // abi3 is the stable ABI of CPython >= 3.2, which the
                // free-threaded build does not provide.
                let abi3 = (major, minor) >= (3, 2) && !abi_flags.contains('t');
                for plat in &plats {
                    push(&interp, &format!("cp{nodot}{abi_flags}"), plat);
                }
                if abi3 {
                    plats.iter().for_each(|p| push(&interp, "abi3", p));
                }
                plats.iter().for_each(|p| push(&interp, "none", p));
                if abi3 {
                    for m in (2..minor).rev() {
                        let older = format!("cp{major}{m}");
                        plats.iter().for_each(|p| push(&older, "abi3", p));
                    }
                }
                Some(interp)
            }
            other => {
                let (short, abis) = match other {
                    "pypy" | "pp" => (
                        "pp",
                        vec![format!("pypy{nodot}_{PYPY_ABI_VERSION}"), "none".to_owned()],
                    ),
                    "ironpython" => ("ip", vec!["none".to_owned()]),
                    "jython" => ("jy", vec!["none".to_owned()]),
                    o => (o, vec!["none".to_owned()]),
                };
                let interp = format!("{short}{nodot}");
                for abi in &abis {
                    plats.iter().for_each(|p| push(&interp, abi, p));
                }
                (short == "pp").then(|| format!("pp{major}"))
            }
        };
        // `packaging.tags.compatible_tags`: pure-Python wheels for this and
        // older minor versions, first for the platform, then for any.
        let py_range: Vec<String> = std::iter::once(format!("py{nodot}"))
            .chain(std::iter::once(format!("py{major}")))
            .chain((0..minor).rev().map(|m| format!("py{major}{m}")))
            .collect();
        for py in &py_range {
            plats.iter().for_each(|p| push(py, "none", p));
        }
        if let Some(i) = &compat_interp {
            push(i, "none", "any");
        }
        for py in &py_range {
            push(py, "none", "any");
        }

        let mut rank = HashMap::with_capacity(order.len());
        for (i, t) in order.iter().enumerate() {
            rank.entry(t.clone()).or_insert(i);
        }
        Tags { order, rank }
    }

    /// All tags, best first.
    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.order.iter()
    }

    /// The rank of a wheel here (lower is better), over all the tag
    /// combinations its name expands to; `None` if it cannot be installed.
    pub fn priority(&self, w: &WheelName) -> Option<usize> {
        let mut best = None;
        for python in &w.python {
            for abi in &w.abi {
                for platform in &w.platform {
                    let t = Tag {
                        python: python.clone(),
                        abi: abi.clone(),
                        platform: platform.clone(),
                    };
                    if let Some(&r) = self.rank.get(&t) {
                        best = Some(best.map_or(r, |b: usize| b.min(r)));
                    }
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    fn linux(glibc: Option<(u16, u16)>, musl: Option<(u16, u16)>, arch: &str) -> Platform {
        Platform {
            os: Os::Linux { glibc, musl },
            arch: arch.into(),
        }
    }

    fn cp311_glibc236() -> Tags {
        Tags::new("cpython", 3, 11, "", &linux(Some((2, 36)), None, "x86_64"))
    }

    fn prio(tags: &Tags, filename: &str) -> Option<usize> {
        tags.priority(&WheelName::parse(filename).unwrap())
    }

    #[test]
    fn wheel_names() {
        let w = WheelName::parse(
            "pydantic_core-2.33.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        )
        .unwrap();
        assert_eq!(w.name, "pydantic-core");
        assert_eq!(w.version.to_string(), "2.33.2");
        assert_eq!(w.build, None);
        assert_eq!(w.python, ["cp311"]);
        assert_eq!(w.abi, ["cp311"]);
        assert_eq!(
            w.platform,
            ["manylinux_2_17_x86_64", "manylinux2014_x86_64"]
        );

        let w = WheelName::parse("Foo.Bar-1.0rc1-1local_x-py2.py3-none-ANY.whl").unwrap();
        assert_eq!(w.name, "foo-bar");
        assert_eq!(w.version.to_string(), "1.0rc1");
        assert_eq!(w.build.as_deref(), Some("1local_x"));
        assert_eq!(w.python, ["py2", "py3"]);
        assert_eq!(w.platform, ["any"]);

        for bad in [
            "foo-1.0-py3-none-any.zip",
            "foo-1.0-py3-none-any",
            "foo-1.0-none-any.whl",
            "foo-1.0-1-2-py3-none-any.whl",
            "foo-1.0-x1-py3-none-any.whl",
            "foo-1.0-py3--any.whl",
            "foo-1.0-py3.-none-any.whl",
            "foo-1.0-py3-none-a/y.whl",
            "foo-one-py3-none-any.whl",
            "../foo-1.0-py3-none-any.whl",
            "-1.0-py3-none-any.whl",
            "foo_-1.0-py3-none-any.whl",
            ".whl",
        ] {
            let e = WheelName::parse(bad).expect_err(bad);
            assert_eq!(e.kind, Kind::Unsafe, "{bad}");
            assert!(e.message.contains(bad), "{}", e.message);
        }
    }

    #[test]
    fn sdists() {
        for (f, sdist) in [
            ("foo-1.0.tar.gz", true),
            ("foo-1.0.zip", true),
            ("foo-1.0.tar.bz2", true),
            ("foo-1.0.tgz", true),
            ("foo-1.0.tar.xz", true),
            ("foo-1.0.tar", true),
            ("foo-1.0.TAR.GZ", true),
            ("foo-1.0-py3-none-any.whl", false),
            ("foo-1.0.egg", false),
            ("foo-1.0.exe", false),
        ] {
            assert_eq!(is_sdist(f), sdist, "{f}");
        }
        let v = |f: &str, p: &str| sdist_version(f, p).map(|v| v.to_string());
        assert_eq!(v("My_Pkg-1.2.3.tar.gz", "my-pkg"), Some("1.2.3".into()));
        assert_eq!(
            v("mcp-server-time-0.6.2.tar.gz", "mcp-server-time"),
            Some("0.6.2".into())
        );
        // Old files on real project pages, read as pip reads them.
        assert_eq!(v("cffi-1.0.2-2.tar.gz", "cffi"), Some("1.0.2.post2".into()));
        assert_eq!(
            v("aiohttp-2.0.6-1.tar.gz", "aiohttp"),
            Some("2.0.6.post1".into())
        );
        assert_eq!(
            v("oauthlib-1.1.0-1.tar.gz", "oauthlib"),
            Some("1.1.0.post1".into())
        );
        assert_eq!(v("regex-2013-02-16.tar.gz", "regex"), None);
        assert_eq!(v("mpmath-all-0.17.tar.gz", "mpmath"), None);
        assert_eq!(v("foo-bar-1.0.tar.gz", "foo"), None);
        assert_eq!(v("foo-bar-1.0.tar.gz", "foo-bar"), Some("1.0".into()));
        assert_eq!(v("other-1.0.tar.gz", "foo"), None);
        assert_eq!(v("foo-bar.tar.gz", "foo"), None);
        assert_eq!(v("foo-1.0.whl", "foo"), None);
        assert_eq!(v("1.0.zip", "foo"), None);
    }

    #[test]
    fn names() {
        for (raw, norm) in [
            ("Django", "django"),
            ("friendly-bard", "friendly-bard"),
            ("Friendly-Bard", "friendly-bard"),
            ("FRIENDLY-BARD", "friendly-bard"),
            ("friendly.bard", "friendly-bard"),
            ("friendly_bard", "friendly-bard"),
            ("friendly--bard", "friendly-bard"),
            ("FrIeNdLy-._.-bArD", "friendly-bard"),
        ] {
            assert_eq!(normalize(raw), norm, "{raw}");
            assert!(same_name(raw, norm) && same_name(norm, raw), "{raw}");
            assert!(!same_name(raw, "friendly-bards"), "{raw}");
        }
        assert!(!same_name("a-b", "ab") && !same_name("a", "a-") && same_name("A_", "a."));
        for (name, ok) in [
            ("a", true),
            ("A1", true),
            ("mcp-server-time", true),
            ("zope.interface", true),
            ("a_b", true),
            ("", false),
            ("-a", false),
            ("a-", false),
            ("a b", false),
            ("a/b", false),
            ("..", false),
            ("é", false),
        ] {
            assert_eq!(valid_project_name(name), ok, "{name:?}");
        }
    }

    #[test]
    fn cpython_311_manylinux_order() {
        let tags = cp311_glibc236();
        let all: Vec<String> = tags.iter().map(Tag::to_string).collect();
        assert_eq!(
            all[..4],
            [
                "cp311-cp311-manylinux_2_36_x86_64",
                "cp311-cp311-manylinux_2_35_x86_64",
                "cp311-cp311-manylinux_2_34_x86_64",
                "cp311-cp311-manylinux_2_33_x86_64",
            ]
        );
        // 2_36 down to 2_5, three legacy aliases, and `linux_x86_64`.
        let plats = platform_tags(&linux(Some((2, 36)), None, "x86_64"));
        assert_eq!(plats.len(), 32 + 3 + 1);
        let at = |t: &str| all.iter().position(|x| x == t).unwrap();
        assert_eq!(
            at("cp311-cp311-manylinux2014_x86_64"),
            at("cp311-cp311-manylinux_2_17_x86_64") + 1
        );
        assert_eq!(
            at("cp311-cp311-manylinux1_x86_64"),
            at("cp311-cp311-manylinux_2_5_x86_64") + 1
        );
        assert_eq!(all[35], "cp311-cp311-linux_x86_64");
        assert_eq!(all[36], "cp311-abi3-manylinux_2_36_x86_64");
        assert_eq!(all[72], "cp311-none-manylinux_2_36_x86_64");
        assert_eq!(all[108], "cp310-abi3-manylinux_2_36_x86_64");
        assert!(at("cp32-abi3-linux_x86_64") < at("py311-none-manylinux_2_36_x86_64"));
        assert!(!all.iter().any(|t| t.starts_with("cp31-")));
        // The same list, in the same order, as `packaging` gives on such a
        // machine: 914 tags ending in `py30-none-any` (checked against
        // `sys_tags()`; `packaging` before 22 lacks only `cp311-none-any`).
        assert_eq!(all.len(), 914);
        assert_eq!(
            all[all.len() - 14..],
            [
                "cp311-none-any",
                "py311-none-any",
                "py3-none-any",
                "py310-none-any",
                "py39-none-any",
                "py38-none-any",
                "py37-none-any",
                "py36-none-any",
                "py35-none-any",
                "py34-none-any",
                "py33-none-any",
                "py32-none-any",
                "py31-none-any",
                "py30-none-any",
            ]
        );
    }

    #[test]
    fn other_platforms() {
        let aarch64 = platform_tags(&linux(Some((2, 28)), None, "aarch64"));
        assert_eq!(aarch64.first().unwrap(), "manylinux_2_28_aarch64");
        assert_eq!(
            aarch64[aarch64.len() - 3..],
            [
                "manylinux_2_17_aarch64",
                "manylinux2014_aarch64",
                "linux_aarch64"
            ]
        );
        let musl = platform_tags(&linux(None, Some((1, 2)), "x86_64"));
        assert_eq!(
            musl,
            [
                "musllinux_1_2_x86_64",
                "musllinux_1_1_x86_64",
                "musllinux_1_0_x86_64",
                "linux_x86_64"
            ]
        );
        let mac = |major, minor, arch: &str| {
            platform_tags(&Platform {
                os: Os::Macos { major, minor },
                arch: arch.into(),
            })
        };
        let arm = mac(14, 5, "arm64");
        assert_eq!(
            arm[..4],
            [
                "macosx_14_0_arm64",
                "macosx_14_0_universal2",
                "macosx_13_0_arm64",
                "macosx_13_0_universal2"
            ]
        );
        assert_eq!(arm.len(), 21);
        assert_eq!(arm.last().unwrap(), "macosx_10_4_universal2");
        assert!(
            !arm.iter()
                .any(|t| t.starts_with("macosx_10") && t.ends_with("arm64"))
        );
        assert_eq!(mac(14, 0, "aarch64"), arm);
        let intel = mac(13, 0, "x86_64");
        assert_eq!(
            intel[..6],
            [
                "macosx_13_0_x86_64",
                "macosx_13_0_intel",
                "macosx_13_0_fat64",
                "macosx_13_0_fat32",
                "macosx_13_0_universal2",
                "macosx_13_0_universal"
            ]
        );
        assert_eq!(intel.len(), 96);
        assert_eq!(intel.last().unwrap(), "macosx_10_4_universal");
        let old = mac(10, 15, "x86_64");
        assert_eq!(old.len(), 72);
        assert_eq!(old[0], "macosx_10_15_x86_64");
        assert_eq!(mac(26, 0, "arm64").len(), 45);
        let win = |arch: &str| {
            platform_tags(&Platform {
                os: Os::Windows,
                arch: arch.into(),
            })
        };
        assert_eq!(win("AMD64"), ["win_amd64"]);
        assert_eq!(win("x86"), ["win32"]);
        assert_eq!(win("ARM64"), ["win_arm64"]);
    }

    #[test]
    fn free_threaded_and_pypy() {
        let plat = linux(Some((2, 17)), None, "x86_64");
        let ft = Tags::new("cpython", 3, 13, "t", &plat);
        assert_eq!(
            ft.iter().next().unwrap().to_string(),
            "cp313-cp313t-manylinux_2_17_x86_64"
        );
        assert!(!ft.iter().any(|t| t.abi == "abi3"));
        assert_eq!(
            prio(&ft, "x-1.0-cp313-cp313-manylinux_2_17_x86_64.whl"),
            None
        );
        assert!(prio(&ft, "x-1.0-cp313-cp313t-manylinux_2_17_x86_64.whl").is_some());

        let pp = Tags::new("pypy", 3, 10, "", &plat);
        assert_eq!(
            pp.iter().next().unwrap().to_string(),
            "pp310-pypy310_pp73-manylinux_2_17_x86_64"
        );
        assert!(prio(&pp, "x-1.0-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl").is_some());
        assert!(prio(&pp, "x-1.0-pp3-none-any.whl").is_some());
        assert_eq!(
            prio(&pp, "x-1.0-cp310-cp310-manylinux_2_17_x86_64.whl"),
            None
        );
        assert_eq!(
            prio(&pp, "x-1.0-cp310-abi3-manylinux_2_17_x86_64.whl"),
            None
        );
    }

    #[test]
    fn real_world_compatibility() {
        let tags = cp311_glibc236();
        for (file, ok) in [
            (
                "pydantic_core-2.33.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                true,
            ),
            (
                "pydantic_core-2.33.2-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                false,
            ),
            (
                "pydantic_core-2.33.2-cp311-cp311-macosx_11_0_arm64.whl",
                false,
            ),
            ("pydantic_core-2.33.2-cp311-cp311-win_amd64.whl", false),
            (
                "pydantic_core-2.33.2-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
                false,
            ),
            (
                "pydantic_core-2.33.2-cp311-cp311-musllinux_1_1_x86_64.whl",
                false,
            ),
            (
                "pydantic_core-2.33.2-cp311-cp311-manylinux_2_38_x86_64.whl",
                false,
            ),
            (
                "cryptography-45.0.4-cp37-abi3-manylinux_2_28_x86_64.whl",
                true,
            ),
            ("orjson-3.10.0-cp38-abi3-manylinux_2_17_x86_64.whl", true),
            (
                "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                true,
            ),
            (
                "PyYAML-6.0.2-cp311-cp311-manylinux_2_5_x86_64.manylinux1_x86_64.whl",
                true,
            ),
            ("mcp-1.9.0-py3-none-any.whl", true),
            ("six-1.17.0-py2.py3-none-any.whl", true),
            ("futures-3.0.5-py2-none-any.whl", false),
            ("x-1.0-cp311-none-any.whl", true),
            ("x-1.0-py311-none-linux_x86_64.whl", true),
        ] {
            assert_eq!(prio(&tags, file).is_some(), ok, "{file}");
        }
        assert_eq!(
            prio(&tags, "x-1.0-cp311-cp311-manylinux_2_36_x86_64.whl"),
            Some(0)
        );
    }

    #[test]
    fn binary_wheel_beats_pure_python() {
        let tags = cp311_glibc236();
        let native = prio(
            &tags,
            "x-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        )
        .unwrap();
        let abi3 = prio(&tags, "x-1.0-cp38-abi3-manylinux_2_17_x86_64.whl").unwrap();
        let pure = prio(&tags, "x-1.0-py3-none-any.whl").unwrap();
        assert!(native < abi3 && abi3 < pure, "{native} {abi3} {pure}");
        // A compressed tag set ranks at its best member.
        let both = prio(
            &tags,
            "x-1.0-cp311-cp311-manylinux_2_5_x86_64.manylinux_2_28_x86_64.whl",
        );
        assert_eq!(
            both,
            prio(&tags, "x-1.0-cp311-cp311-manylinux_2_28_x86_64.whl")
        );
    }
}
