//! The only code in safex that turns archive bytes into files.
//!
//! Archives reach this module already verified against their expected hash
//! (DESIGN.md §5), but a verified archive is only an archive its author meant
//! to publish: the author may be the attacker. So every entry is checked before
//! a byte of it is written, and anything unsafe *refuses the whole archive*
//! with [`Kind::Unsafe`](crate::error::Kind::Unsafe). Nothing is skipped with a
//! warning: a package whose files were silently dropped could run with a
//! different meaning than the one that was reviewed and pinned. The caller
//! unpacks into a fresh private directory and deletes it on refusal.

pub mod tar;
pub mod zip;

/// Ceilings on what one archive may unpack to. Past any of them the archive
/// is refused as a decompression bomb.
///
/// Why these numbers (the defaults). Bombs are about *ratio* and *total*;
/// the per-file and total caps are there so that a bomb that compresses
/// poorly still cannot fill the disk, and they are set so that real
/// packages pass: ML wheels carry single files of 1-2 GiB (torch's CUDA
/// libraries) and `sglang` has a member over 512 MiB. A policy may change
/// each (`[archives]` in `docs/policy.md`), and a refusal names the key.
///
/// - `max_total_bytes`, 16 GiB (`archives.max_total_size`): the largest
///   real wheels unpack to a few GiB; cargo caps crates for the same reason
///   after CVE-2022-36114
///   (<https://github.com/rust-lang/cargo/security/advisories/GHSA-2hvr-h6gw-qrxp>).
/// - `max_entries`, 100 000 (`archives.max_entries`): big packages ship tens
///   of thousands of files; more is an attempt to exhaust inodes.
/// - `max_file_bytes`, 8 GiB (`archives.max_file_size`): one prebuilt
///   library, with room.
/// - `max_ratio`, 100, once more than `ratio_floor_bytes` (32 MiB) has been
///   written: source code and JSON compress 4 to 15 times, and deflate cannot
///   exceed about 1032 to 1, so only padding and zeros reach 100. The floor lets
///   small, very compressible packages (a fixture of repeated text) through;
///   above it a ratio bomb is stopped at a few dozen MiB, long before the
///   absolute caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes all files together may unpack to.
    pub max_total_bytes: u64,
    /// Most entries (files, directories, headers) an archive may hold.
    pub max_entries: u64,
    /// Most bytes a single file may unpack to.
    pub max_file_bytes: u64,
    /// Most bytes written per compressed byte, once past `ratio_floor_bytes`.
    pub max_ratio: u64,
    /// Bytes that may always be written before `max_ratio` applies.
    pub ratio_floor_bytes: u64,
}

const MIB: u64 = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_total_bytes: 16 * 1024 * MIB,
            max_entries: 100_000,
            max_file_bytes: 8 * 1024 * MIB,
            max_ratio: 100,
            ratio_floor_bytes: 32 * MIB,
        }
    }
}

/// The hint of a size refusal: what it protects, and the policy key.
pub fn bomb_hint(key: &str) -> String {
    format!(
        "this looks like a decompression bomb, and safex stops before it fills the disk; \
         if the package is real, raise `{key}` in a policy (see `safex policy show`)"
    )
}

impl Limits {
    /// Most bytes an archive of `compressed` bytes may expand to under the
    /// ratio rule: "more than the floor *and* more than ratio × compressed" is
    /// refused, so the cap is the larger of the two.
    pub fn ratio_cap(&self, compressed: u64) -> u64 {
        self.ratio_floor_bytes
            .max(self.max_ratio.saturating_mul(compressed))
    }
}
