//! Listings the client gets filtered: what the policy denies is absent from
//! `tools/list`, `resources/list`, `resources/templates/list` and
//! `prompts/list`, and tools whose definitions changed since they were
//! pinned are reported (or withheld, with `tools.pin = "refuse"`).

use serde_json::{Value, json};

use super::mediate::Session;
use super::pins::{Pin, PinBook};
use super::rules::{Kind, PinMode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Tools,
    Resources,
    Templates,
    Prompts,
}

impl Listing {
    /// The result's array, the field naming each item, and what the policy calls it.
    fn fields(self) -> (&'static str, &'static str, Kind) {
        match self {
            Listing::Tools => ("tools", "name", Kind::Tool),
            Listing::Resources => ("resources", "uri", Kind::Resource),
            Listing::Templates => ("resourceTemplates", "uriTemplate", Kind::Resource),
            Listing::Prompts => ("prompts", "name", Kind::Prompt),
        }
    }
}

/// What to tell the user about one tool, once per session.
struct Note {
    name: String,
    pin: Option<Pin>,
    flags: Vec<String>,
    withheld: bool,
}

impl Session {
    /// The listing in `line` without what must not be shown; `None` when
    /// nothing was removed (the line then goes on byte for byte).
    pub(super) fn filter_listing(&self, kind: Listing, line: &[u8]) -> Option<Vec<u8>> {
        let body = super::message::trim(line);
        let mut v: Value = serde_json::from_slice(body).ok()?;
        let (field, key, k) = kind.fields();
        let result = v.get_mut("result")?;
        let last_page = result.get("nextCursor").is_none_or(Value::is_null);
        let items = result.get_mut(field)?.as_array_mut()?;
        let before = items.len();
        items.retain(|it| {
            it.get(key)
                .and_then(Value::as_str)
                .is_some_and(|n| self.rules().denied(k, n).is_none())
        });
        let mut changed = items.len() != before;
        if kind == Listing::Tools {
            changed |= self.pin_tools(items, last_page);
        }
        if !changed {
            return None;
        }
        let mut out = serde_json::to_vec(&v).ok()?;
        out.push(b'\n');
        Some(out)
    }

    /// Compare each listed tool with its pin; withhold the changed ones
    /// under `refuse`; on the first session of this lock entry, record
    /// them once the listing is complete. Returns whether any was withheld.
    fn pin_tools(&self, items: &mut Vec<Value>, last_page: bool) -> bool {
        let pins = self.pins();
        let refuse = self.rules().pin == PinMode::Refuse;
        let mut notes = Vec::new();
        let mut withheld_any = false;
        let (removed, to_record) = self.with_state(|st| {
            items.retain(|tool| {
                let (name, digest, pin) = pins.compare(tool);
                st.seen.insert(name.clone(), digest);
                let flags = PinBook::flags(tool);
                let differs = pin.is_some_and(|p| p != Pin::Same);
                let withhold = differs && refuse;
                if withhold {
                    st.withheld.insert(name.clone());
                    withheld_any = true;
                } else {
                    st.withheld.remove(&name);
                }
                if (differs || !flags.is_empty()) && st.reported.insert(name.clone()) {
                    notes.push(Note {
                        name,
                        pin,
                        flags,
                        withheld: withhold,
                    });
                }
                !withhold
            });
            if !last_page {
                return (Vec::new(), None);
            }
            let removed: Vec<String> = pins
                .pinned
                .iter()
                .flat_map(|p| p.keys())
                .filter(|n| !st.seen.contains_key(*n))
                .filter(|n| st.reported.insert(format!("\u{0}removed:{n}")))
                .cloned()
                .collect();
            let record = (pins.pinned.is_none() && st.reported.insert("\u{0}recorded".into()))
                .then(|| st.seen.clone());
            (removed, record)
        });
        for n in &notes {
            self.report(n);
        }
        for name in &removed {
            self.report_removed(name);
        }
        if let Some(digests) = to_record
            && let Err(e) = pins.record(&self.m, &digests)
        {
            eprintln!(
                "warning: cannot record the tool pins of `{}`: {e}",
                self.m.root
            );
        }
        withheld_any
    }

    fn report(&self, n: &Note) {
        let what = match n.pin {
            Some(Pin::Changed) => Some("changed since it was pinned"),
            Some(Pin::Added) => Some("is new since the tools were pinned"),
            _ => None,
        };
        if let Some(what) = what {
            let done = if n.withheld {
                "; it is withheld (`tools.pin = \"refuse\"`)"
            } else {
                ""
            };
            eprintln!(
                "warning: tool `{}` of `{}` {what}{done}",
                n.name, self.m.root
            );
            eprintln!("hint: {}", self.accept_hint());
        }
        for f in &n.flags {
            eprintln!(
                "warning: tool `{}` of `{}` looks like a prompt injection: {f}",
                n.name, self.m.root
            );
        }
        self.event(
            "mcp-pin",
            json!({
                "name": n.name,
                "pin": match n.pin { Some(Pin::Changed) => "changed", Some(Pin::Added) => "added", Some(Pin::Same) => "pinned", None => "unpinned" },
                "withheld": n.withheld,
                "flags": n.flags,
            }),
        );
    }

    fn report_removed(&self, name: &str) {
        eprintln!(
            "warning: tool `{name}` of `{}` was pinned but is no longer listed",
            self.m.root
        );
        eprintln!("hint: {}", self.accept_hint());
        self.event(
            "mcp-pin",
            json!({ "name": name, "pin": "removed", "withheld": false, "flags": [] }),
        );
    }

    fn accept_hint(&self) -> String {
        if self.pins().system {
            return "these pins are the system's; ask your admin to review the new definitions"
                .into();
        }
        format!(
            "when the new definitions are the ones you trust, record them: `safex mcp tools --accept {} {} ...` (this server's launch, its arguments included)",
            self.m.ecosystem.launcher(),
            self.m.root
        )
    }
}
