//! The rule catalogue: every rule id with its text and source, read from
//! `harness/catalogue/rules.md` (a copy of the design's catalogue, compiled
//! in so the binary needs nothing beside it), and each rule's level with the
//! verbatim sentences that justify it, from `harness/catalogue/sources.yaml`.
//! The pages those sentences come from are vendored in
//! `harness/catalogue/sap-docs/` (CC-BY-4.0, see its LICENSE-NOTE.md); a test
//! checks that every quote is really there.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How much a check weighs in the verdict.
///
/// Only `must` failures fail a run at the default profile: a verdict must be
/// defensible from SAP's text. `should` checks hold documented
/// recommendations and protocol niceties (reason codes); `choice` checks pin
/// the reading idprop takes where the pages are silent or contradict each
/// other, so a correct implementation that reads them otherwise gets a
/// warning, not a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// A page (or an RFC it relies on) states it.
    Must,
    /// A documented recommendation.
    Should,
    /// The pages are silent or disagree; idprop's reading, named in `reading`.
    Choice,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "must",
            Level::Should => "should",
            Level::Choice => "choice",
        }
    }
}

/// Where a requirement is written: a verbatim sentence of an SAP page in
/// `harness/catalogue/sap-docs/`, of a seed, or of an RFC a page relies on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// A page file name in `harness/catalogue/sap-docs/`.
    #[serde(default)]
    pub page: Option<String>,
    /// A seed file name (`000_….txt`).
    #[serde(default)]
    pub seed: Option<String>,
    /// An RFC section, e.g. `RFC 4514 §2.4`.
    #[serde(default)]
    pub rfc: Option<String>,
    /// The sentence, verbatim.
    pub quote: String,
}

impl Source {
    /// `page "quote"` for reports.
    pub fn cite(&self) -> String {
        let place = self.page.as_deref().or(self.seed.as_deref()).or(self.rfc.as_deref()).unwrap_or("?");
        format!("{place}: \"{}\"", self.quote)
    }
}

/// One rule of the specification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rule {
    pub id: String,
    pub text: String,
    /// The documentation page (id suffix) or seed it comes from.
    pub source: String,
    /// The catalogue section, e.g. "Token-service URL (role token-retrieval)".
    pub section: String,
    /// The rule's default level (a check may lower it for one reading).
    pub level: Level,
    /// The sentences that make it a requirement.
    pub sources: Vec<Source>,
    /// For `choice` rules: the reading idprop takes.
    pub reading: Option<String>,
    /// For `choice` rules: the other readings the suite accepts.
    pub alternatives: Vec<String>,
    /// What part of the rule is only a reading, where it mixes both.
    pub note: Option<String>,
}

const CATALOGUE: &str = include_str!("../catalogue/rules.md");
const SOURCES: &str = include_str!("../catalogue/sources.yaml");

/// One entry of `sources.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    level: Level,
    #[serde(default)]
    sources: Vec<Source>,
    #[serde(default)]
    reading: Option<String>,
    #[serde(default)]
    alternatives: Vec<String>,
    #[serde(default)]
    note: Option<String>,
}

fn metas() -> BTreeMap<String, Meta> {
    idprop_mocks::yaml::from_str(SOURCES, "harness/catalogue/sources.yaml")
        .unwrap_or_else(|e| panic!("the compiled-in catalogue sources do not parse: {e}"))
}

/// Every rule, in catalogue order.
pub fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let metas = metas();
        let mut rules = parse(CATALOGUE);
        for r in &mut rules {
            if let Some(m) = metas.get(&r.id) {
                r.level = m.level;
                r.sources = m.sources.clone();
                r.reading = m.reading.clone();
                r.alternatives = m.alternatives.clone();
                r.note = m.note.clone();
            }
        }
        rules
    })
}

/// The level of rule `id` (`must` for ids not in the catalogue).
pub fn level(id: &str) -> Level {
    rule(id).map(|r| r.level).unwrap_or(Level::Must)
}

/// Whether `source`'s quote stands verbatim in its page or seed under
/// `dir` (`harness/catalogue/`: `sap-docs/`, `seeds/`). RFC quotes are not
/// vendored and pass; a missing file or quote is the error.
pub fn check_quote(source: &Source, dir: &std::path::Path) -> Result<(), String> {
    let file = match (&source.page, &source.seed) {
        (Some(p), _) => dir.join("sap-docs").join(p),
        (None, Some(s)) => dir.join("seeds").join(s),
        _ => return Ok(()),
    };
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    if normalise(&text).contains(&normalise(&source.quote)) {
        Ok(())
    } else {
        Err(format!("{:?} not in {}", source.quote, file.display()))
    }
}

/// Markdown and HTML markup stripped, whitespace collapsed: the form in
/// which a quote must appear in its page.
pub fn normalise(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_tag = false;
    while let Some(c) = chars.next() {
        match c {
            '<' if chars.peek().is_some_and(|n| n.is_ascii_alphabetic() || *n == '/') => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            '`' | '*' => {}
            // Markdown backslash escapes: `\(` is `(`.
            '\\' if chars.peek().is_some_and(|n| n.is_ascii_punctuation()) => {
                if let Some(n) = chars.next() {
                    s.push(n);
                }
            }
            // Link syntax: keep the text, drop "(url)" after "]".
            '[' => {}
            ']' if chars.peek() == Some(&'(') => {
                for n in chars.by_ref() {
                    if n == ')' {
                        break;
                    }
                }
            }
            ']' => {}
            '_' if s.ends_with(' ') || s.is_empty() || chars.peek().is_none_or(|n| n.is_whitespace()) => {}
            _ => s.push(c),
        }
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ").replace("&nbsp;", " ")
}

/// The rule with `id` (exact).
pub fn rule(id: &str) -> Option<&'static Rule> {
    rules().iter().find(|r| r.id == id)
}

/// The area prefix of a rule id (`TU-4` → `TU`).
pub fn prefix(id: &str) -> &str {
    id.split('-').next().unwrap_or(id)
}

fn parse(md: &str) -> Vec<Rule> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in md.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            section = h.trim().to_string();
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `ID` | text | source |
        if cells.len() >= 5 {
            let id = cells[1].trim_matches('`');
            if id.contains('-') && id.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && id != "id" {
                out.push(Rule {
                    id: id.to_string(),
                    text: cells[2].to_string(),
                    source: cells[3].to_string(),
                    section: section.clone(),
                    level: Level::Must,
                    sources: vec![],
                    reading: None,
                    alternatives: vec![],
                    note: None,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_catalogue_parses_with_every_section() {
        let r = super::rules();
        assert!(r.len() > 60, "{}", r.len());
        let tu4 = super::rule("TU-4").unwrap();
        assert!(tu4.text.contains("subdomain"));
        assert_eq!(tu4.source, "8634e21 example 1");
        assert!(super::rule("PT-2").is_some());
        assert!(super::rule("XX-1").is_none());
    }

    /// Every rule has a level; `must`/`should` rules cite a sentence and
    /// `choice` rules name the reading taken; no entry names an unknown rule.
    #[test]
    fn every_rule_has_a_level_and_a_justification() {
        let metas = super::metas();
        for r in super::rules() {
            let m = metas.get(&r.id).unwrap_or_else(|| panic!("{} has no entry in sources.yaml", r.id));
            match m.level {
                super::Level::Choice => assert!(m.reading.is_some(), "{}: a choice names its reading", r.id),
                _ => assert!(!m.sources.is_empty(), "{}: a {} rule cites a sentence", r.id, m.level.as_str()),
            }
        }
        for id in metas.keys() {
            assert!(super::rule(id).is_some(), "sources.yaml names {id}, which is not in rules.md");
        }
    }

    /// A quote is a verbatim sentence of its page or seed (after markup is
    /// stripped and whitespace collapsed on both sides).
    #[test]
    fn every_quote_is_in_its_page() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalogue");
        let bad: Vec<String> = super::rules()
            .iter()
            .flat_map(|r| r.sources.iter().map(move |s| (r, s)))
            .filter_map(|(r, s)| super::check_quote(s, &dir).err().map(|e| format!("{}: {e}", r.id)))
            .collect();
        assert!(bad.is_empty(), "quotes not found verbatim:\n{}", bad.join("\n"));
    }

    #[test]
    fn normalising_strips_markup() {
        assert_eq!(
            super::normalise("The `tokenServiceURL` is **used**  as\n is, see [here](x.md)."),
            "The tokenServiceURL is used as is, see here."
        );
        assert_eq!(super::normalise("<code>a_b</code> _x_"), "a_b x");
    }
}
