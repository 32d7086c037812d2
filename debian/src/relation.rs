//! Relationship fields (`Depends`, `Pre-Depends`, `Provides`, `Conflicts`, `Breaks`):
//! comma-separated clauses of `|` alternatives, each `name[:arch] [(op version)] [[archs]]`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::version::Version;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "<<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = ">>")]
    Gt,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "<<" => Op::Lt,
            // `<` and `>` are obsolete spellings of `<=` and `>=` (deb-control(5)).
            "<=" | "<" => Op::Le,
            "=" => Op::Eq,
            ">=" | ">" => Op::Ge,
            ">>" => Op::Gt,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    pub op: Op,
    pub version: Version,
}

impl Constraint {
    pub fn matches(&self, v: &Version) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let ord = v.cmp(&self.version);
        match self.op {
            Op::Lt => ord == Less,
            Op::Le => ord != Greater,
            Op::Eq => ord == Equal,
            Op::Ge => ord != Less,
            Op::Gt => ord == Greater,
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.as_str(), self.version)
    }
}

/// One alternative of a clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Atom {
    pub name: String,
    /// Architecture qualifier after `:` (`any`, `native` or an architecture).
    pub arch: Option<String>,
    pub constraint: Option<Constraint>,
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(a) = &self.arch {
            write!(f, ":{a}")?;
        }
        if let Some(c) = &self.constraint {
            write!(f, " ({c})")?;
        }
        Ok(())
    }
}

/// A clause: satisfied when any alternative is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause(pub Vec<Atom>);

impl fmt::Display for Clause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid relationship {text:?}: {reason}")]
pub struct RelationError {
    pub text: String,
    pub reason: String,
}

/// Parses a relationship field for `arch`: alternatives restricted to other architectures
/// (`[!amd64]`, `[arm64]`) are dropped, as is a clause left with none.
pub fn parse_relations(field: &str, arch: &str) -> Result<Vec<Clause>, RelationError> {
    let mut clauses = Vec::new();
    for clause in field.split(',') {
        let clause = clause.trim();
        if clause.is_empty() {
            continue;
        }
        let mut atoms = Vec::new();
        for alt in clause.split('|') {
            if let Some(atom) = parse_atom(alt.trim(), arch)? {
                atoms.push(atom);
            }
        }
        if !atoms.is_empty() {
            clauses.push(Clause(atoms));
        }
    }
    Ok(clauses)
}

fn parse_atom(text: &str, arch: &str) -> Result<Option<Atom>, RelationError> {
    let err = |reason: &str| RelationError {
        text: text.to_owned(),
        reason: reason.to_owned(),
    };
    let name_end = text
        .find(|c: char| c.is_whitespace() || "([<".contains(c))
        .unwrap_or(text.len());
    let (full_name, mut rest) = text.split_at(name_end);
    if full_name.is_empty() {
        return Err(err("missing package name"));
    }
    let (name, qualifier) = match full_name.split_once(':') {
        Some((n, q)) => (n, Some(q.to_owned())),
        None => (full_name, None),
    };
    let mut constraint = None;
    rest = rest.trim_start();
    if let Some(after) = rest.strip_prefix('(') {
        let close = after.find(')').ok_or_else(|| err("unclosed '('"))?;
        let inner = after[..close].trim();
        let op_len = inner
            .find(|c: char| !"<>=".contains(c))
            .ok_or_else(|| err("missing version"))?;
        let op = Op::parse(&inner[..op_len]).ok_or_else(|| err("unknown operator"))?;
        let version = inner[op_len..]
            .trim()
            .parse()
            .map_err(|e: crate::version::VersionError| err(&e.to_string()))?;
        constraint = Some(Constraint { op, version });
        rest = after[close + 1..].trim_start();
    }
    if let Some(after) = rest.strip_prefix('[') {
        let close = after.find(']').ok_or_else(|| err("unclosed '['"))?;
        if !arch_list_matches(&after[..close], arch) {
            return Ok(None);
        }
    }
    Ok(Some(Atom {
        name: name.to_owned(),
        arch: qualifier,
        constraint,
    }))
}

fn arch_list_matches(list: &str, arch: &str) -> bool {
    let archs: Vec<&str> = list.split_whitespace().collect();
    if archs.iter().all(|a| a.starts_with('!')) {
        !archs.iter().any(|a| &a[1..] == arch)
    } else {
        archs.contains(&arch)
    }
}

/// A `Provides` entry: a virtual package name, optionally with an exact version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provide {
    pub name: String,
    pub version: Option<Version>,
}

pub fn parse_provides(field: &str, arch: &str) -> Result<Vec<Provide>, RelationError> {
    parse_relations(field, arch)?
        .into_iter()
        .flat_map(|c| c.0)
        .map(|a| match a.constraint {
            None => Ok(Provide {
                name: a.name,
                version: None,
            }),
            Some(Constraint {
                op: Op::Eq,
                version,
            }) => Ok(Provide {
                name: a.name,
                version: Some(version),
            }),
            Some(_) => Err(RelationError {
                text: field.to_owned(),
                reason: "Provides allows only '=' versions".to_owned(),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_alternatives_versions_and_qualifiers() {
        let r = parse_relations(
            "libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, python3:any (<< 3.12), perl:any",
            "amd64",
        )
        .unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].to_string(), "libc6 (>= 2.34)");
        assert_eq!(r[1].to_string(), "debconf (>= 0.5) | debconf-2.0");
        assert_eq!(r[2].0[0].arch.as_deref(), Some("any"));
        assert_eq!(r[2].0[0].constraint.as_ref().unwrap().op, Op::Lt);
        assert_eq!(r[3].0[0].constraint, None);
    }

    #[test]
    fn drops_alternatives_for_other_architectures() {
        let r = parse_relations(
            "a [amd64], b [!amd64], c [arm64 amd64] | d [arm64]",
            "amd64",
        )
        .unwrap();
        let names: Vec<String> = r.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["a", "c"]);
    }

    #[test]
    fn obsolete_operators_mean_or_equal() {
        let r = parse_relations("a (< 2), b (> 1)", "amd64").unwrap();
        assert_eq!(r[0].0[0].constraint.as_ref().unwrap().op, Op::Le);
        assert_eq!(r[1].0[0].constraint.as_ref().unwrap().op, Op::Ge);
    }

    #[test]
    fn reports_malformed_relations() {
        assert!(parse_relations("a (>= 1", "amd64").is_err());
        assert!(parse_relations("a (~ 1)", "amd64").is_err());
        assert!(parse_relations("(>= 1)", "amd64").is_err());
    }

    #[test]
    fn constraints_match_versions() {
        let c = |s: &str| {
            parse_relations(s, "amd64").unwrap()[0].0[0]
                .constraint
                .clone()
                .unwrap()
        };
        let v = |s: &str| s.parse::<Version>().unwrap();
        assert!(c("a (>= 2.34)").matches(&v("2.36-9")));
        assert!(!c("a (>= 2.34)").matches(&v("2.31-13")));
        assert!(c("a (<< 3.12)").matches(&v("3.11.2-1")));
        assert!(c("a (= 1.0-1)").matches(&v("1.0-1")));
        assert!(!c("a (>> 1.0-1)").matches(&v("1.0-1")));
    }

    #[test]
    fn parses_versioned_provides() {
        let p = parse_provides("awk, python3-foo (= 1.2-1)", "amd64").unwrap();
        assert_eq!(p[0].name, "awk");
        assert_eq!(p[1].version.as_ref().unwrap().to_string(), "1.2-1");
        assert!(parse_provides("x (>= 1)", "amd64").is_err());
    }
}
