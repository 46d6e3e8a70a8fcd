//! Assembling a tree's `node_modules` in a private staging directory: each
//! placed package is fetched (verified), unpacked at its place, inspected;
//! then the whole directory is renamed into the cache under the tree's
//! digest, with a marker that the warm path reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;

use crate::archive;
use crate::cache::ENV_MARKER;

use crate::ecosystem::Ecosystem;
use crate::error::{Error, Result};
use crate::fetch::Fetcher;
use crate::integrity::Integrity;
use crate::npm::inspect::{self, Inspection};
use crate::npm::resolve::Placed;
use crate::npm::spec::NpmName;
use crate::policy::Policy;

/// What a finished environment holds, written last before the rename.
#[derive(Debug, Serialize, Deserialize)]
pub struct EnvMarker {
    pub digest: String,
    /// Top-level packages (the roots) with their bins.
    pub roots: Vec<RootBins>,
    /// `name@version` → install-time code that npm would have run.
    #[serde(default)]
    pub skipped_install_code: BTreeMap<String, Vec<String>>,
    /// `node_modules/.bin/<bin>` links to the roots' bins exist (npm's
    /// bin-links), so a program is started under its bin's name, as npx
    /// starts it. Environments built before had none.
    #[serde(default)]
    pub bin_links: bool,
    /// The node chosen when the tree was built, where it is not the one
    /// found without searching (`PATH`'s): a version manager's that meets
    /// `engines.node`, or one found with no `node` on `PATH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RootBins {
    pub name: String,
    pub version: String,
    pub path: String,
    pub bins: BTreeMap<String, String>,
    #[serde(default)]
    pub engines_node: Option<String>,
}

impl EnvMarker {
    pub fn read(env_dir: &Path) -> Option<EnvMarker> {
        let bytes = std::fs::read(env_dir.join(ENV_MARKER)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// One package after fetch, verify, unpack and inspection.
#[derive(Debug, Clone)]
pub struct Installed {
    pub path: String,
    pub name: NpmName,
    pub version: String,
    pub integrity: Integrity,
    pub inspection: Inspection,
}

/// Check a tree path from the resolver or the lockfile:
/// `node_modules/<name>(/node_modules/<name>)*`, every name a valid one.
pub fn check_tree_path(path: &str) -> Result<()> {
    let bad = || {
        Error::unsafe_pkg(format!(
            "tree path `{}` is not a `node_modules` path",
            crate::redact::shown(path)
        ))
        .with_hint(
            "the lockfile entry is damaged or was edited by hand; remove it and launch again",
        )
    };
    let mut rest = path;
    loop {
        rest = rest.strip_prefix("node_modules/").ok_or_else(bad)?;
        let (name, next) = if let Some(stripped) = rest.strip_prefix('@') {
            let slash = stripped.find('/').ok_or_else(bad)?;
            let after = &stripped[slash + 1..];
            let end = after
                .find('/')
                .map(|i| 1 + slash + 1 + i)
                .unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        } else {
            let end = rest.find('/').unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        NpmName::parse_legacy(name).map_err(|_| bad())?;
        if next.is_empty() {
            return Ok(());
        }
        rest = next.strip_prefix('/').ok_or_else(bad)?;
    }
}

/// Check every package sent on `rx` against the policy, then fetch, verify,
/// unpack and inspect it, in parallel,
/// into `staging`. Returns when the sender is dropped and all are done; the
/// first failure cancels the rest.
pub async fn install_all(
    fetcher: Arc<Fetcher>,
    staging: PathBuf,
    policy: Arc<Policy>,
    mut rx: UnboundedReceiver<Placed>,
) -> Result<Vec<Installed>> {
    let mut tasks: JoinSet<Result<Installed>> = JoinSet::new();
    let mut done = Vec::new();
    let mut open = true;
    while open || !tasks.is_empty() {
        tokio::select! {
            msg = rx.recv(), if open => match msg {
                Some(p) => {
                    // Deny list and known-compromised versions: refused before a byte is fetched.
                    if let Err(e) = policy.check_package(Ecosystem::Npm, p.name.as_str(), &p.version) {
                        tasks.abort_all();
                        return Err(e);
                    }
                    let f = fetcher.clone();
                    let s = staging.clone();
                    tasks.spawn(async move { install_one(&f, &s, p).await });
                }
                None => open = false,
            },
            Some(res) = tasks.join_next(), if !tasks.is_empty() => {
                match res {
                    Ok(Ok(i)) => {
                        // Bundled packages are known once unpacked: the same
                        // deny list and known-compromised list apply.
                        for b in &i.inspection.bundled {
                            if let Err(e) = policy.check_package(Ecosystem::Npm, &b.name, &b.version) {
                                tasks.abort_all();
                                return Err(Error {
                                    message: format!("{} (bundled in `{}@{}`)", e.message, i.name, i.version),
                                    ..e
                                });
                            }
                        }
                        done.push(i)
                    }
                    Ok(Err(e)) => {
                        tasks.abort_all();
                        return Err(e);
                    }
                    Err(e) => {
                        tasks.abort_all();
                        return Err(Error::internal(format!("an install task failed: {e}")));
                    }
                }
            }
        }
    }
    done.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(done)
}

async fn install_one(fetcher: &Fetcher, staging: &Path, p: Placed) -> Result<Installed> {
    check_tree_path(&p.path)?;
    let label = format!("{}@{}", p.name, p.version);
    let (verified, integrity) = fetcher
        .npm_tarball(&label, &p.url, &p.registry, &p.expected, p.source)
        .await?;
    // Each package unpacks into its own fresh directory; `assemble` moves
    // them to their places once all are done (parents before children).
    let dest = unpack_dir(staging, &p.path);
    let name = p.name.clone();
    let version = p.version.clone();
    let limits = fetcher.limits.clone();
    let inspection = tokio::task::spawn_blocking(move || -> Result<Inspection> {
        fs_err::create_dir_all(&dest)?;
        // The handle whose bytes were hashed just now: never a path re-opened.
        archive::tar::unpack_npm_from(verified.reader()?, &dest, &label, &limits)?;
        inspect::npm_package(&dest, name.as_str(), &version)
    })
    .await
    .map_err(|e| Error::internal(format!("unpack task failed: {e}")))??;
    Ok(Installed {
        path: p.path,
        name: p.name,
        version: p.version,
        integrity,
        inspection,
    })
}

fn unpack_dir(staging: &Path, tree_path: &str) -> PathBuf {
    staging
        .join(".unpacked")
        .join(crate::integrity::sha256_hex(tree_path.as_bytes()))
}

/// Move every unpacked package to its place in `staging/node_modules`.
/// `installed` is sorted by path, so a package arrives before the ones
/// nested in its `node_modules`. A place already taken (a bundled
/// dependency with the same name) is refused rather than merged.
pub fn assemble(staging: &Path, installed: &[Installed]) -> Result<()> {
    for i in installed {
        let from = unpack_dir(staging, &i.path);
        let to = staging.join(&i.path);
        if to.exists() {
            return Err(Error::unsafe_pkg(format!(
                "`{}@{}` would go where its parent's tarball already has files (`{}`)",
                i.name, i.version, i.path
            ))
            .with_hint(
                "a bundled dependency collides with a resolved one; please report this package",
            ));
        }
        if let Some(parent) = to.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::rename(&from, &to)?;
    }
    fs_err::remove_dir_all(staging.join(".unpacked"))?;
    Ok(())
}

/// Where a root's bin is linked under its own name: multi-call programs
/// (`cowsay`/`cowthink`) read the name they were started as from
/// `process.argv[1]`, which node takes from the path it is given without
/// resolving links.
pub const BIN_DIR: &str = "node_modules/.bin";

/// Link every root's bins into [`BIN_DIR`] of the environment being built
/// (relative links inside it; the first root to claim a name keeps it, as
/// the bin chosen for that name is the first root's). Not on Windows, where
/// npm writes shims instead and safex starts the script itself.
pub fn link_bins(staging: &Path, roots: &[RootBins]) -> Result<bool> {
    if !cfg!(unix) {
        return Ok(false);
    }
    let dir = staging.join(BIN_DIR);
    fs_err::create_dir_all(&dir)?;
    for r in roots {
        for (name, path) in &r.bins {
            let link = dir.join(name);
            if link.symlink_metadata().is_ok() {
                continue;
            }
            // Both were checked when the package was inspected: the name is
            // one path component, the path stays inside the package.
            let target = Path::new("..")
                .join(r.path.trim_start_matches("node_modules/"))
                .join(path);
            #[cfg(unix)]
            fs_err::os::unix::fs::symlink(&target, &link)?;
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn tree_paths() {
        for (p, ok) in [
            ("node_modules/a", true),
            ("node_modules/@s/a", true),
            ("node_modules/a/node_modules/@s/b", true),
            ("node_modules/@s/a/node_modules/b", true),
            ("node_modules/../x", false),
            ("node_modules/a/../../x", false),
            ("node_modules/@s/../x", false),
            ("node_modules/@s", false),
            ("x/a", false),
            ("node_modules/a/b", false),
            ("/node_modules/a", false),
            ("node_modules/", false),
        ] {
            assert_eq!(super::check_tree_path(p).is_ok(), ok, "{p}");
        }
    }
}
