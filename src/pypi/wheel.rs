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
//!   size ([`super::record`]).
//! - Startup hooks (`.pth` lines, `sitecustomize`, modules in `bin/`) are
//!   judged by the policy before anything is written
//!   ([`super::startup_hooks`]).
//! - Console scripts are written by safex from `entry_points.txt`
//!   ([`super::entry_points`]).
//! - Each file goes where its install scheme says: the root of the wheel to
//!   `purelib` or `platlib`, `<name>.data/<key>/` to the directory of `key`;
//!   a `#!python` line of a script there becomes the environment's Python.
//! - Every file is created with `create_new`: two wheels that install the same
//!   path are refused rather than letting the later one win.
//!
//! On an error, files may already have been written: the caller installs into
//! a private staging directory and deletes it on any error.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::archive::Limits;
use crate::archive::zip::{FileDigest, Member, ValidatedZip, open_wheel_from};
use crate::error::{Error, Result};
use crate::policy::PthPolicy;
use crate::pypi::entry_points::{EntryPoint, HINT_ENTRY, parse_entry_points, script, shebang};
use crate::pypi::record::{Record, parse_csv};
use crate::pypi::startup_hooks::{
    HINT_HOOK, HINT_PTH, HINT_PTH_ALL, Hook, Place, executable_pth_line, path_only_pth,
    startup_hook,
};
use crate::pypi::tags::normalize;

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

const HINT_MALFORMED: &str = "the bytes matched the expected hash, \
    so the published wheel itself is malformed";
const HINT_RECORD: &str = "the wheel matched its expected hash, so it was published with files \
    that differ from its own `RECORD`; pip and uv refuse it too";
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
    let zip = open_wheel_from(whl, &label, limits)?;
    let dist_info = find_dist_info(&zip, name, version)?;
    let ctx = Ctx {
        label: &label,
        layout,
        dist_info: &dist_info,
    };

    // RECORD first: every file read into memory is then checked at once.
    let mut members = Members::open(&ctx, zip)?;
    let root_is_purelib = ctx.read_wheel_file(&mut members)?;
    let installer = ctx.installer(&members, root_is_purelib)?;

    // Where each file goes; refuse unknown `.data` keys and files that would
    // land on one path.
    let mut claimed = Claims::default();
    ctx.claim(&mut claimed, &installer, "`INSTALLER`")?;
    let mut plan = ctx.plan(&members, root_is_purelib, name, &mut claimed)?;

    // Startup hooks, before anything is written.
    let hooks = judge(&ctx, &mut members, &mut plan, pth)?;

    // Console scripts, validated and placed before anything is written.
    let console_scripts = ctx.read_console_scripts(&mut members)?;
    let header = shebang(&layout.python)?;
    for ep in &console_scripts {
        let what = format!("console script `{}`", ep.name);
        ctx.claim(&mut claimed, &layout.scripts.join(&ep.name), &what)?;
    }

    // Write.
    for (member, dest) in &plan {
        if !ctx.claim_shared(shared, &members, member, dest)? {
            continue;
        }
        if hooks.strip.contains(&member.name) {
            ctx.write_stripped_pth(&mut members, member, dest)?;
        } else {
            ctx.write_member(&mut members, member, dest, &header)?;
        }
    }
    for ep in &console_scripts {
        ctx.write_console_script(ep, &header)?;
    }
    let mut file = ctx.create(&installer, "`INSTALLER`")?;
    file.write_all(b"safex\n")?;
    set_file_mode(&file, false)?;

    Ok(InstalledWheel {
        console_scripts,
        files: plan.len() as u64,
        stripped: hooks.stripped,
    })
}

/// Every member with where it goes, in the wheel's order.
pub(super) type Plan = Vec<(Member, Dest)>;

/// Paths this wheel will create, lowercased, with the member that needs them.
#[derive(Default)]
struct Claims {
    files: HashMap<String, String>,
    dirs: HashMap<String, String>,
}

/// The wheel's members, read through its `RECORD`: small files are read
/// into memory once (and checked then), the others streamed as they are
/// written.
pub(super) struct Members {
    zip: ValidatedZip,
    record: Record,
    loaded: HashMap<String, Vec<u8>>,
}

impl Members {
    /// Read `RECORD` and check that it lists every file, and only those.
    fn open(ctx: &Ctx, mut zip: ValidatedZip) -> Result<Self> {
        let record_name = format!("{}/RECORD", ctx.dist_info);
        let record_member = zip
            .file(&record_name)
            .cloned()
            .ok_or_else(|| ctx.integrity(format!("has no `{record_name}`")))?;
        let (record_bytes, _) = zip.read(&record_member, METADATA_MAX)?;
        let record = Record::parse(&record_bytes, ctx.dist_info).map_err(|e| ctx.integrity(e))?;
        record.check_listing(&zip).map_err(|e| ctx.integrity(e))?;
        let mut loaded = HashMap::new();
        loaded.insert(record_name, record_bytes);
        Ok(Members {
            zip,
            record,
            loaded,
        })
    }

    /// Read a small file into memory (once) and check it against RECORD.
    pub(super) fn load(&mut self, ctx: &Ctx, name: &str) -> Result<Vec<u8>> {
        if let Some(bytes) = self.loaded.get(name) {
            return Ok(bytes.clone());
        }
        let member = self
            .zip
            .file(name)
            .cloned()
            .ok_or_else(|| ctx.refuse(format!("has no `{name}`")))?;
        let (bytes, digest) = self.zip.read(&member, METADATA_MAX)?;
        self.record
            .check_digest(name, &digest)
            .map_err(|e| ctx.integrity(e))?;
        self.loaded.insert(name.to_owned(), bytes.clone());
        Ok(bytes)
    }

    /// Write a member to `out`: from memory if it was loaded, else streamed.
    fn copy(&mut self, member: &Member, out: &mut dyn Write) -> Result<FileDigest> {
        match self.loaded.remove(&member.name) {
            Some(bytes) => {
                out.write_all(&bytes)?;
                Ok(FileDigest::of(&bytes))
            }
            None => self.zip.copy_to(member, out),
        }
    }
}

/// What messages need: which wheel, where it goes.
pub(super) struct Ctx<'a> {
    label: &'a str,
    layout: &'a VenvLayout,
    /// The wheel's `<name>-<version>.dist-info` directory.
    dist_info: &'a str,
}

impl Ctx<'_> {
    pub(super) fn refuse(&self, what: impl std::fmt::Display) -> Error {
        Error::unsafe_pkg(format!("wheel `{}` {what}", self.label)).with_hint(HINT_MALFORMED)
    }

    fn integrity(&self, what: impl std::fmt::Display) -> Error {
        Error::integrity(format!("wheel `{}` {what}", self.label)).with_hint(HINT_RECORD)
    }

    /// The `WHEEL` file's `Root-Is-Purelib`.
    fn read_wheel_file(&self, members: &mut Members) -> Result<bool> {
        let wheel_name = format!("{}/WHEEL", self.dist_info);
        let bytes = members.load(self, &wheel_name)?;
        parse_wheel_file(&bytes).map_err(|e| self.refuse(format!("has a `{wheel_name}` {e}")))
    }

    /// Where safex writes `INSTALLER`; a wheel that ships its own is refused.
    fn installer(&self, members: &Members, root_is_purelib: bool) -> Result<PathBuf> {
        let dist_info = self.dist_info;
        if members
            .zip
            .file(&format!("{dist_info}/INSTALLER"))
            .is_some()
        {
            return Err(self.refuse(format!("ships its own `{dist_info}/INSTALLER`")));
        }
        Ok(if root_is_purelib {
            &self.layout.purelib
        } else {
            &self.layout.platlib
        }
        .join(dist_info)
        .join("INSTALLER"))
    }

    /// Where each member goes, each path claimed in `claims`.
    fn plan(
        &self,
        members: &Members,
        root_is_purelib: bool,
        name: &str,
        claims: &mut Claims,
    ) -> Result<Plan> {
        let stem = self.dist_info.trim_end_matches(".dist-info");
        let data_dir = format!("{stem}.data");
        let mut plan = Vec::new();
        for member in members.zip.files() {
            let dest = destination(&member.name, &data_dir, root_is_purelib, self.layout, name)
                .map_err(|e| self.refuse(e))?;
            self.claim(claims, &dest.path, &format!("`{}`", member.name))?;
            plan.push((member.clone(), dest));
        }
        Ok(plan)
    }

    /// The console scripts of `entry_points.txt`, if the wheel has one.
    fn read_console_scripts(&self, members: &mut Members) -> Result<Vec<EntryPoint>> {
        let entry_points_name = format!("{}/entry_points.txt", self.dist_info);
        if members.zip.file(&entry_points_name).is_none() {
            return Ok(Vec::new());
        }
        let bytes = members.load(self, &entry_points_name)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| self.refuse(format!("has a `{entry_points_name}` that is not UTF-8")))?;
        parse_entry_points(text).map_err(|e| self.refuse(e).with_hint(HINT_ENTRY))
    }

    /// Claim `dest` among the environment's wheels ([`SharedFiles`]):
    /// `Ok(false)` when another wheel writes the same bytes there.
    fn claim_shared(
        &self,
        shared: &SharedFiles,
        members: &Members,
        member: &Member,
        dest: &Dest,
    ) -> Result<bool> {
        shared
            .claim(
                &dest.path,
                self.label,
                members.record.sha256_of(&member.name),
            )
            .map_err(|other| {
                self.refuse(format!(
                    "installs `{}`, which `{other}` installs with other contents",
                    member.name
                ))
                .with_hint(HINT_OVERWRITE)
            })
    }

    /// A `.pth` file to strip: checked against RECORD as published, then
    /// written without the lines that would run, or not at all if nothing
    /// is left.
    fn write_stripped_pth(
        &self,
        members: &mut Members,
        member: &Member,
        dest: &Dest,
    ) -> Result<()> {
        let bytes = members.loaded.remove(&member.name).unwrap_or_default();
        members
            .record
            .check_digest(&member.name, &FileDigest::of(&bytes))
            .map_err(|e| self.integrity(e))?;
        let kept = path_only_pth(&bytes);
        if !kept.is_empty() {
            let mut file = self.create(&dest.path, &format!("`{}`", member.name))?;
            file.write_all(&kept)?;
            set_file_mode(&file, false)?;
        }
        Ok(())
    }

    /// Write a member where it goes (a script with its `#!python` line
    /// rewritten) and check it against RECORD.
    fn write_member(
        &self,
        members: &mut Members,
        member: &Member,
        dest: &Dest,
        header: &str,
    ) -> Result<()> {
        let file = self.create(&dest.path, &format!("`{}`", member.name))?;
        let executable = member.executable || dest.scheme == Scheme::Scripts;
        let mut out = BufWriter::new(&file);
        let digest = if dest.scheme == Scheme::Scripts {
            let mut fixed = ShebangFix::new(&mut out, header.as_bytes());
            let digest = members.copy(member, &mut fixed)?;
            fixed.finish()?;
            digest
        } else {
            members.copy(member, &mut out)?
        };
        out.flush()?;
        drop(out);
        members
            .record
            .check_digest(&member.name, &digest)
            .map_err(|e| self.integrity(e))?;
        set_file_mode(&file, executable)
    }

    fn write_console_script(&self, ep: &EntryPoint, header: &str) -> Result<()> {
        let path = self.layout.scripts.join(&ep.name);
        let what = format!("console script `{}`", ep.name);
        let mut file = self.create(&path, &what)?;
        file.write_all(script(header, ep).as_bytes())?;
        set_file_mode(&file, true)
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
    fn create(&self, path: &Path, what: &str) -> Result<fs_err::File> {
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
            let owner = owner_of(self.layout, path, self.dist_info)
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

/// The install scheme key a file goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scheme {
    Purelib,
    Platlib,
    Scripts,
    Data,
    Headers,
}

impl Scheme {
    fn place(self) -> Place {
        match self {
            Scheme::Purelib | Scheme::Platlib => Place::SitePackages,
            Scheme::Data => Place::Data,
            Scheme::Scripts => Place::Scripts,
            Scheme::Headers => Place::Elsewhere,
        }
    }
}

/// What [`judge`] decided for the files that stay in the plan.
struct Judgement {
    /// The files left out or stripped, for the report
    /// ([`InstalledWheel::stripped`]).
    stripped: Vec<String>,
    /// The `.pth` files to write without their executable lines.
    strip: HashSet<String>,
}

/// Judge the startup hooks among the files of `plan` by the policy `pth`,
/// before anything is written: left out of `plan` and reported, marked to
/// be written without their executable lines, or refused.
fn judge(ctx: &Ctx, members: &mut Members, plan: &mut Plan, pth: PthPolicy) -> Result<Judgement> {
    let mut stripped = Vec::new();
    let mut strip = HashSet::new();
    let mut dropped = HashSet::new();
    for (member, dest) in plan.iter() {
        match startup_hook(dest.scheme.place(), &dest.rel) {
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
                let bytes = members.load(ctx, &member.name)?;
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
    Ok(Judgement { stripped, strip })
}

/// Where one member goes.
#[derive(Debug)]
pub(super) struct Dest {
    path: PathBuf,
    pub(super) scheme: Scheme,
    /// The path below the scheme's directory.
    pub(super) rel: String,
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
    use crate::pypi::entry_points::SCRIPT_DIR_OFF_PATH;
    use crate::pypi::wheel_fixture::*;
    use zip::write::SimpleFileOptions;

    const MIB: u64 = 1024 * 1024;

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
}
