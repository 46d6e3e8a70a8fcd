//! The lockfile as its TOML spells it (every field a string), and the one
//! place each field becomes its type: a name, a hash that does not parse is
//! refused here, once, as a [`Problem`] at its package, so that no reader
//! of a [`LockFile`](crate::lock::LockFile) parses a field again.
//!
//! Only the fields' own form is checked here; whether an entry agrees with
//! itself (roots, edges, unique paths) is `crate::lock::check`'s.

use std::collections::BTreeMap;
use std::str::FromStr;

use pep508_rs::PackageName;
use serde::Deserialize;

use crate::integrity::{Algo, Integrity, Sha256Digest};
use crate::lock::check::Problem;
use crate::lock::{LockedPackage, LockedWheel, NpmEntry, PypiEntry, PypiPackage, PypiVersion};
use crate::npm::spec::NpmName;
use crate::redact::shown;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLockFile {
    pub version: u32,
    #[serde(default)]
    pub npm: Vec<RawNpmEntry>,
    #[serde(default)]
    pub pypi: Vec<RawPypiEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNpmEntry {
    pub roots: Vec<String>,
    #[serde(rename = "package")]
    packages: Vec<RawLockedPackage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLockedPackage {
    path: String,
    name: String,
    version: String,
    integrity: String,
    #[serde(default)]
    dependencies: BTreeMap<String, String>,
    #[serde(default)]
    bundled: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPypiEntry {
    pub roots: Vec<String>,
    #[serde(rename = "package")]
    packages: Vec<RawPypiPackage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPypiPackage {
    name: String,
    version: String,
    #[serde(default)]
    dependencies: Vec<String>,
    #[serde(rename = "wheel")]
    wheels: Vec<RawWheel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWheel {
    file: String,
    sha256: String,
}

impl RawNpmEntry {
    /// The entry with its names and hashes typed. A hash must be SRI
    /// `sha512`: `sha1` (or anything weaker) is refused, since a collision
    /// must not be enough to pass.
    pub fn typed(self) -> Result<NpmEntry, Problem> {
        let packages = self
            .packages
            .into_iter()
            .map(|p| {
                let at = |what: String| Problem::at(&p.path, what);
                let name = NpmName::parse_legacy(&p.name).map_err(|_| {
                    at(format!("an invalid name `{}`", shown(&p.name))).in_field("name", &p.name)
                })?;
                let integrity = match Integrity::parse_sri(&p.integrity) {
                    Ok(i) if i.strongest.algo == Algo::Sha512 => i,
                    Ok(i) => {
                        return Err(at(format!(
                            "a weak integrity (`{}`): safex records only `sha512`",
                            i.strongest.algo.name()
                        ))
                        .in_field("integrity", &p.integrity));
                    }
                    Err(_) => {
                        return Err(at(format!(
                            "an integrity that is not a `sha512-...` value (`{}`)",
                            shown(&p.integrity)
                        ))
                        .in_field("integrity", &p.integrity));
                    }
                };
                Ok(LockedPackage {
                    path: p.path,
                    name,
                    version: p.version,
                    integrity,
                    dependencies: p.dependencies,
                    bundled: p.bundled,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(NpmEntry {
            roots: self.roots,
            packages,
        })
    }
}

impl RawPypiEntry {
    /// The entry with its names, versions and wheel hashes typed. A name must be
    /// written normalized (PEP 503), as safex writes it: the edges and the
    /// policy compare names as text.
    pub fn typed(self) -> Result<PypiEntry, Problem> {
        let packages = self
            .packages
            .into_iter()
            .map(|p| {
                let at = |what: String| Problem::at(&p.name, what);
                let normalized = crate::pypi::tags::normalize(&p.name);
                let name = Some(&p.name)
                    .filter(|n| crate::pypi::spec::valid_name(n) && normalized == **n)
                    .and_then(|n| PackageName::from_str(n).ok())
                    .ok_or_else(|| {
                        at(format!(
                            "a name `{}` that is not a normalized project name",
                            shown(&p.name)
                        ))
                    })?;
                let version = PypiVersion::parse(&p.version).ok_or_else(|| {
                    at(format!("an invalid version `{}`", shown(&p.version)))
                        .in_field("version", &p.version)
                })?;
                let wheels = p
                    .wheels
                    .into_iter()
                    .map(|w| match Sha256Digest::parse_lower_hex(&w.sha256) {
                        Some(sha256) => Ok(LockedWheel {
                            file: w.file,
                            sha256,
                        }),
                        None => Err(at(format!(
                            "wheel `{}` with a hash that is not 64 lowercase hex digits of sha256",
                            shown(&w.file)
                        ))
                        .in_field("sha256", &w.sha256)),
                    })
                    .collect::<Result<_, _>>()?;
                Ok(PypiPackage {
                    name,
                    version,
                    dependencies: p.dependencies,
                    wheels,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(PypiEntry {
            roots: self.roots,
            packages,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::lock::LockFile;

    const SRI: &str = "sha512-H0D8ktokFpR1CXnubPWC8tXX0o4YM13gWrxU0FYOD1MChgxlK/CNVgJSql50IQVG82n7u86MEs/HlXsmUv6adQ==";
    const SHA: &str = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";

    /// An npm entry of one package, as safex writes it.
    fn npm(name: &str, integrity: &str) -> String {
        format!(
            "version = 1\n\n[[npm]]\nroots = [\"a@1.0.0\"]\n\n[[npm.package]]\npath = \"node_modules/a\"\nname = \"{name}\"\nversion = \"1.0.0\"\nintegrity = \"{integrity}\"\n"
        )
    }

    /// A PyPI entry of one package with one wheel, as safex writes it.
    fn pypi(name: &str, sha256: &str) -> String {
        pypi_at(name, "1.0", sha256)
    }

    fn pypi_at(name: &str, version: &str, sha256: &str) -> String {
        format!(
            "version = 1\n\n[[pypi]]\nroots = [\"a==1.0\"]\n\n[[pypi.package]]\nname = \"{name}\"\nversion = \"{version}\"\n\n[[pypi.package.wheel]]\nfile = \"a-1.0-py3-none-any.whl\"\nsha256 = \"{sha256}\"\n"
        )
    }

    fn refused(text: &str) -> String {
        LockFile::parse(text, Path::new("safex.lock"))
            .expect_err("must be refused")
            .message
    }

    #[test]
    fn typed_fields_are_written_back_as_read() {
        // PEP 440 would print `v1.0` as `1.0`: the text is kept.
        for text in [npm("a", SRI), pypi("a", SHA), pypi_at("a", "v1.0", SHA)] {
            let lock = LockFile::parse(&text, Path::new("safex.lock")).unwrap();
            assert_eq!(toml::to_string(&lock).unwrap(), text);
        }
    }

    /// A hand-written SRI list is read as before (its strongest value is the
    /// one checked); the lockfile, when safex next writes it, holds that value
    /// alone.
    #[test]
    fn an_sri_list_reads_as_its_sha512() {
        let sha1 = "sha1-hvfkN/qlp/zhXR3cuerq6jd2Z7g=";
        let text = npm("a", &format!("{sha1} {SRI}?opt"));
        let lock = LockFile::parse(&text, Path::new("safex.lock")).unwrap();
        assert_eq!(lock.npm[0].packages[0].integrity.to_string(), SRI);
        assert_eq!(toml::to_string(&lock).unwrap(), npm("a", SRI));
    }

    #[test]
    fn a_malformed_hash_is_refused_at_its_own_line() {
        for (integrity, want) in [
            (
                "sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk=",
                "weak integrity (`sha1`): safex records only `sha512`",
            ),
            (
                "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
                "weak integrity (`sha256`)",
            ),
            ("md5-1B2M2Y8AsgTpgAmY7PhCfg==", "not a `sha512-...` value"),
            ("sha512-AAAA", "not a `sha512-...` value"),
            ("", "not a `sha512-...` value"),
        ] {
            let got = refused(&npm("a", integrity));
            assert!(
                got.starts_with(
                    "lockfile `safex.lock:10`: the entry for `a@1.0.0`, package `node_modules/a`, has "
                ) && got.contains(want),
                "{integrity}: {got}"
            );
        }
        for sha in ["a".repeat(40), SHA.to_uppercase(), format!("{SHA} ")] {
            let got = refused(&pypi("a", &sha));
            assert!(
                got.starts_with("lockfile `safex.lock:12`: the entry for `a==1.0`, package `a`, has wheel `a-1.0-py3-none-any.whl` with a hash that is not 64 lowercase hex digits of sha256"),
                "{sha}: {got}"
            );
        }
    }

    #[test]
    fn a_malformed_pypi_version_is_refused_at_its_line() {
        let got = refused(&pypi_at("a", "1.0-latest", SHA));
        assert!(
            got.starts_with(
                "lockfile `safex.lock:8`: the entry for `a==1.0`, package `a`, has an invalid version `1.0-latest`"
            ),
            "{got}"
        );
    }

    #[test]
    fn a_malformed_name_is_refused() {
        let got = refused(&npm("../a", SRI));
        assert!(
            got.starts_with("lockfile `safex.lock:8`: ")
                && got.contains("has an invalid name `../a`"),
            "{got}"
        );
        for name in ["A", "a_b", "a..b", "-a"] {
            let got = refused(&pypi(name, SHA));
            assert!(
                got.contains(&format!(
                    "package `{name}`, has a name `{name}` that is not a normalized project name"
                )),
                "{got}"
            );
        }
    }
}
