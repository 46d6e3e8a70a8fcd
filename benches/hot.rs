//! Micro-benchmarks of safex's hot functions: `cargo bench --bench hot`.
//!
//! A plain `main` (no harness crate): each case runs a warm-up, then enough
//! iterations to fill about --time-per-case (default 1 s), and prints the
//! median of 5 such batches in ns per operation. A regression shows up as a
//! larger number; compare runs on the same machine only.
//!
//! Cases: lock lookup (read a lockfile of 20 roots x 100 packages, find one
//! root), root spec parsing (npm and PyPI), integrity check of a 5 MiB
//! buffer (sha512 while streaming in 64 KiB chunks, then compare), and the
//! unpack of a 100-package tree (100 small npm tarballs, each into a fresh
//! directory).

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use safex::archive::Limits;
use safex::integrity::{Hasher, Integrity};
use safex::lock::{FORMAT_VERSION, LockFile, LockedPackage, NpmEntry};
use safex::npm::spec::NpmName;

/// Runs `f` in batches and returns the median ns per call.
fn bench(name: &str, per_case: Duration, mut f: impl FnMut() -> usize) {
    // Warm-up, and an estimate of one call's cost.
    let t = Instant::now();
    let mut calls = 0u64;
    while t.elapsed() < per_case / 10 || calls < 1 {
        black_box(f());
        calls += 1;
    }
    let one = t.elapsed().as_secs_f64() / calls as f64;
    let batch = ((per_case.as_secs_f64() / 5.0 / one) as u64).max(1);
    let mut per_op: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                black_box(f());
            }
            t.elapsed().as_nanos() as f64 / batch as f64
        })
        .collect();
    per_op.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (lo, med, hi) = (per_op[0], per_op[2], per_op[4]);
    println!(
        "{name:<44} {:>14} ns/op   (min {:.0}, max {:.0}; {batch} x 5)",
        format!("{med:.0}"),
        lo,
        hi
    );
}

fn fake_integrity(seed: u64) -> Integrity {
    let mut bytes = Vec::with_capacity(64);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for _ in 0..64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.push(x as u8);
    }
    Integrity::sha512(bytes)
}

/// A lockfile with `roots` entries of `per` packages each; returns its path
/// and the roots of the last entry (the worst case for a linear lookup).
fn dep_version(p: usize) -> String {
    format!("1.{}.{}", p % 7, p % 13)
}

fn dep_edge(p: usize) -> (String, String) {
    (format!("dep-{p}"), dep_version(p))
}

fn write_lockfile(dir: &Path, roots: usize, per: usize) -> (PathBuf, Vec<String>) {
    let mut lock = LockFile {
        version: FORMAT_VERSION,
        ..Default::default()
    };
    for r in 0..roots {
        let root = format!("@bench/server-{r}");
        let mut packages = vec![LockedPackage {
            path: format!("node_modules/{root}"),
            name: NpmName::parse_legacy(&root).expect("a valid name"),
            version: "1.0.0".into(),
            integrity: fake_integrity(r as u64 * 1000),
            // A self-consistent entry (the lock check refuses others): the
            // root reaches dep-1..dep-10, dep-p reaches dep-(p+10); an edge
            // records the version it resolved to.
            dependencies: (1..per.min(11)).map(dep_edge).collect(),
            bundled: Default::default(),
        }];
        for p in 1..per {
            let name = format!("dep-{p}");
            packages.push(LockedPackage {
                path: format!("node_modules/{name}"),
                name: NpmName::parse_legacy(&name).expect("a valid name"),
                version: dep_version(p),
                integrity: fake_integrity((r * 1000 + p) as u64),
                dependencies: (p + 10 < per)
                    .then(|| dep_edge(p + 10))
                    .into_iter()
                    .collect(),
                bundled: Default::default(),
            });
        }
        lock.npm.push(NpmEntry {
            roots: vec![format!("{root}@1.0.0")],
            packages,
        });
    }
    let path = dir.join("safex.lock");
    std::fs::write(&path, toml::to_string(&lock).unwrap()).unwrap();
    (path, vec![format!("@bench/server-{}@1.0.0", roots - 1)])
}

/// 100 small npm tarballs (`package/package.json`, an index, a lib dir with
/// a few files): returns their paths.
fn write_tarballs(dir: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let path = dir.join(format!("pkg-{i}.tgz"));
            let gz = flate2::write::GzEncoder::new(
                std::fs::File::create(&path).unwrap(),
                flate2::Compression::default(),
            );
            let mut tar = tar::Builder::new(gz);
            let mut add = |name: &str, body: &[u8]| {
                let mut h = tar::Header::new_ustar();
                h.set_size(body.len() as u64);
                h.set_mode(0o644);
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mtime(499162500);
                tar.append_data(&mut h, name, body).unwrap();
            };
            add(
                "package/package.json",
                format!(r#"{{"name":"pkg-{i}","version":"1.0.0","main":"index.js"}}"#).as_bytes(),
            );
            add(
                "package/index.js",
                format!("module.exports = require('./lib/a.js') + {i};\n").as_bytes(),
            );
            for f in 0..6 {
                let body = format!("// file {f} of pkg-{i}\n").repeat(40 + f * 20);
                add(
                    &format!("package/lib/{}.js", (b'a' + f as u8) as char),
                    body.as_bytes(),
                );
            }
            add(
                "package/README.md",
                "# pkg\n\nsome text.\n".repeat(30).as_bytes(),
            );
            tar.into_inner().unwrap().finish().unwrap().flush().unwrap();
            path
        })
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; a number of seconds may follow the
    // filter, e.g. `cargo bench --bench hot -- unpack 3`.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let filter = args.iter().find(|a| a.parse::<f64>().is_err()).cloned();
    let secs = args
        .iter()
        .find_map(|a| a.parse::<f64>().ok())
        .unwrap_or(1.0);
    let per_case = Duration::from_secs_f64(secs);
    let want = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let tmp = tempfile::Builder::new()
        .prefix("safex-bench-hot-")
        .tempdir()
        .unwrap();

    if want("lock") {
        let (path, roots) = write_lockfile(tmp.path(), 20, 100);
        let size = std::fs::metadata(&path).unwrap().len();
        bench(
            &format!("lock: read {} KiB + find_npm (20x100)", size / 1024),
            per_case,
            || {
                let lock = LockFile::read(&path).unwrap();
                lock.find::<safex::lock::NpmEntry>(&roots)
                    .unwrap()
                    .packages
                    .len()
            },
        );
        let lock = LockFile::read(&path).unwrap();
        bench("lock: find_npm only (last of 20)", per_case, || {
            lock.find::<safex::lock::NpmEntry>(black_box(&roots))
                .unwrap()
                .packages
                .len()
        });
        bench("lock: entry digest (100 packages)", per_case, || {
            lock.find::<safex::lock::NpmEntry>(&roots)
                .unwrap()
                .digest()
                .len()
        });
    }

    if want("spec") {
        let npm = [
            "@modelcontextprotocol/server-filesystem@2026.8.31",
            "left-pad@1.3.0",
            "@scope/pkg@1.2.3-beta.4+build.5",
        ];
        bench("spec: npm parse_root x3", per_case, || {
            npm.iter()
                .map(|s| safex::npm::spec::parse_root(black_box(s)).unwrap().is_ok() as usize)
                .sum()
        });
        let py = [
            "mcp-server-time==2026.10.19",
            "mcp-server-git[extra]==2026.10.19",
            "Some.Package@1.0.0",
        ];
        bench("spec: pypi parse_root x3", per_case, || {
            py.iter()
                .map(|s| safex::pypi::spec::parse_root(black_box(s)).unwrap().is_ok() as usize)
                .sum()
        });
    }

    if want("integrity") {
        let mut data = vec![0u8; 5 * 1024 * 1024];
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let mut h = Hasher::for_expected(None);
        h.update(&data);
        let expected = h.finish().sha512_integrity();
        bench("integrity: sha512 5 MiB + matches", per_case, || {
            let mut h = Hasher::for_expected(Some(&expected));
            for chunk in data.chunks(64 * 1024) {
                h.update(chunk);
            }
            assert!(expected.matches(&h.finish()));
            data.len()
        });
    }

    if want("unpack") {
        let src = tmp.path().join("tarballs");
        std::fs::create_dir(&src).unwrap();
        let tgzs = write_tarballs(&src, 100);
        let limits = Limits::default();
        let out = tmp.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let mut round = 0u64;
        bench("unpack: 100 npm tarballs into fresh dirs", per_case, || {
            round += 1;
            let base = out.join(round.to_string());
            std::fs::create_dir(&base).unwrap();
            let mut files = 0;
            for (i, t) in tgzs.iter().enumerate() {
                let dest = base.join(i.to_string());
                std::fs::create_dir(&dest).unwrap();
                let stats =
                    safex::archive::tar::unpack_npm(t, &dest, "pkg@1.0.0", &limits).unwrap();
                black_box(&stats);
                files += 1;
            }
            // Nothing is deleted until the end (the temporary directory's
            // drop): on ext4 without a journal, a deleted tree slows every
            // inode allocation for ~30 s (`recently_deleted`), so deleting
            // here would time the previous round's cleanup instead.
            files
        });
    }
}
