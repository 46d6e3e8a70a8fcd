//! npm or PyPI: the one name for an ecosystem across policy, lock, audit,
//! launcher spellings and MCP configs, with the words safex shows for it.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ecosystem {
    Npm,
    Pypi,
}

impl Ecosystem {
    /// As the audit log, the policy and the cache name it: `npm`, `pypi`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npm",
            Ecosystem::Pypi => "pypi",
        }
    }

    /// Its launcher word in safex's commands and hints: `npx`, `uvx`.
    pub fn launcher(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npx",
            Ecosystem::Pypi => "uvx",
        }
    }

    /// The exact-pin form of a spec, for usage lines.
    pub fn spec_form(self) -> &'static str {
        match self {
            Ecosystem::Npm => "<name>@<x.y.z>",
            Ecosystem::Pypi => "<name>==<x.y.z>",
        }
    }
}
