//! Turns `policies/known-compromised.toml` into a Rust table at build time:
//! the list is checked on every launch, and parsing its TOML there cost a
//! quarter of a warm launch's instructions. The file stays the source; a
//! malformed entry fails the build, naming it.

use std::fmt::Write as _;

fn main() {
    let src = "policies/known-compromised.toml";
    println!("cargo::rerun-if-changed={src}");
    let text = std::fs::read_to_string(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let table: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("{src} is not valid TOML: {e}"));
    let mut out = String::from(
        "/// `policies/known-compromised.toml`; written by `build.rs`.\npub(crate) const BUILTIN_KNOWN: &[BuiltinKnown] = &[\n",
    );
    for (key, value) in &table {
        let eco = match key.as_str() {
            "npm" => "Ecosystem::Npm",
            "pypi" => "Ecosystem::Pypi",
            other => panic!("{src}: unknown table `{other}` (only [[npm]] and [[pypi]])"),
        };
        let entries = value
            .as_array()
            .unwrap_or_else(|| panic!("{src}: `{key}` must be an array of tables"));
        for (i, e) in entries.iter().enumerate() {
            let e = e
                .as_table()
                .unwrap_or_else(|| panic!("{src}: {key}[{i}] is not a table"));
            let at = |k: &str| format!("{src}: {key}[{i}].{k}");
            for k in e.keys() {
                assert!(
                    matches!(k.as_str(), "name" | "versions" | "incident" | "reference"),
                    "{}: unknown key",
                    at(k)
                );
            }
            let string = |k: &str| -> Option<String> {
                e.get(k).map(|v| {
                    v.as_str()
                        .unwrap_or_else(|| panic!("{} must be a string", at(k)))
                        .to_owned()
                })
            };
            let name = string("name").unwrap_or_else(|| panic!("{} is missing", at("name")));
            let reference =
                string("reference").unwrap_or_else(|| panic!("{} is missing", at("reference")));
            let versions: Vec<String> = e
                .get("versions")
                .and_then(|v| v.as_array())
                .unwrap_or_else(|| panic!("{} must be a list of strings", at("versions")))
                .iter()
                .map(|v| {
                    v.as_str()
                        .unwrap_or_else(|| panic!("{} must be strings", at("versions")))
                        .to_owned()
                })
                .collect();
            assert!(
                !name.is_empty() && !versions.is_empty(),
                "{}: empty",
                at("name")
            );
            let incident = match string("incident") {
                Some(i) => format!("Some({i:?})"),
                None => "None".to_owned(),
            };
            writeln!(
                out,
                "    BuiltinKnown {{ ecosystem: {eco}, name: {name:?}, versions: &{versions:?}, incident: {incident}, reference: {reference:?} }},"
            )
            .unwrap();
        }
    }
    out.push_str("];\n");
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("known.rs");
    std::fs::write(dest, out).unwrap();
}
