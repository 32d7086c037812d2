//! Cog validates the *decoded* config against its JSON schema (`config_schema_v1.0.json`), so
//! only what survives decoding can fail: required keys, the `run`/`predict` exclusion, enum and
//! pattern checks. Cog reports one error, the most specific (deepest field; a type error wins a
//! tie), in gojsonschema's words. This module reproduces those checks on [`ConfigFile`].

use super::error::Issue;
use super::file::{ConfigFile, WeightFile};

const ENV_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*=.*$";
const WEIGHT_NAME_PATTERN: &str = "^[a-z0-9]+([._-][a-z0-9]+)*$";

struct Candidate {
    field: String,
    message: String,
    invalid_type: bool,
}

/// The schema error Cog would print, if any.
pub fn validate(config: &ConfigFile) -> Option<Issue> {
    let mut found = Vec::new();
    collect(config, &mut found);
    most_specific(found)
}

fn most_specific(found: Vec<Candidate>) -> Option<Issue> {
    let depth = |c: &Candidate| c.field.split('.').count();
    let mut best: Option<Candidate> = None;
    for candidate in found {
        let better = match &best {
            None => true,
            Some(b) => {
                depth(&candidate) > depth(b)
                    || (depth(&candidate) == depth(b) && candidate.invalid_type && !b.invalid_type)
            }
        };
        if better {
            best = Some(candidate);
        }
    }
    best.map(|c| Issue::Schema {
        field: if c.field == "(root)" {
            "cog.yaml".to_owned()
        } else {
            c.field
        },
        message: c.message,
    })
}

fn push(found: &mut Vec<Candidate>, field: impl Into<String>, message: impl Into<String>) {
    found.push(Candidate {
        field: field.into(),
        message: message.into(),
        invalid_type: false,
    });
}

fn collect(config: &ConfigFile, found: &mut Vec<Candidate>) {
    if config.run.is_some() && config.predict.is_some() {
        push(found, "(root)", "Must not validate the schema (not)");
    }
    if let Some(build) = &config.build {
        if build.python_version.is_none() {
            push(found, "build", "python_version is required");
        }
        for (i, item) in build.run.iter().flatten().enumerate() {
            // A run item is an anyOf (string | object); Cog always encodes it as an object, so
            // the object branch's errors follow the anyOf error.
            let mut inner = Vec::new();
            if item.command.is_empty() {
                push(&mut inner, format!("build.run.{i}"), "command is required");
            }
            for (j, mount) in item.mounts.iter().enumerate() {
                let field = format!("build.run.{i}.mounts.{j}");
                for (name, value) in [
                    ("type", &mount.kind),
                    ("id", &mount.id),
                    ("target", &mount.target),
                ] {
                    if value.is_empty() {
                        push(&mut inner, field.clone(), format!("{name} is required"));
                    }
                }
                if !mount.kind.is_empty() && mount.kind != "secret" {
                    push(
                        &mut inner,
                        format!("{field}.type"),
                        format!("{field}.type must be one of the following: \"secret\""),
                    );
                }
            }
            if let Some(first) = inner.first() {
                // gojsonschema's anyOf error describes itself with the next error's text.
                let message = first.message.clone();
                push(found, format!("build.run.{i}"), message);
                found.extend(inner);
            }
        }
    }
    if let Some(concurrency) = &config.concurrency
        && concurrency.max.is_none()
    {
        push(found, "concurrency", "max is required");
    }
    for (i, entry) in config.environment.iter().flatten().enumerate() {
        if !matches_env_pattern(entry) {
            push(
                found,
                format!("environment.{i}"),
                format!("Does not match pattern '{ENV_PATTERN}'"),
            );
        }
    }
    for (i, weight) in config.weights.iter().flatten().enumerate() {
        weight_errors(i, weight, found);
    }
}

fn weight_errors(i: usize, weight: &WeightFile, found: &mut Vec<Candidate>) {
    if !matches_weight_name(&weight.name) {
        push(
            found,
            format!("weights.{i}.name"),
            format!("Does not match pattern '{WEIGHT_NAME_PATTERN}'"),
        );
    }
    let field = format!("weights.{i}.source");
    match weight.source.len() {
        // Encoded as JSON null: neither an object nor a list.
        0 => {
            push(
                found,
                field.clone(),
                "Must validate one and only one schema (oneOf)",
            );
            found.push(Candidate {
                field,
                message: "must be a mapping".to_owned(),
                invalid_type: true,
            });
        }
        1 => {}
        _ => {
            for (j, source) in weight.source.iter().enumerate() {
                if source.uri.is_empty() {
                    push(found, format!("{field}.{j}"), "uri is required");
                }
            }
        }
    }
}

/// `^[A-Za-z_][A-Za-z0-9_]*=.*$` (`.` does not match a newline).
fn matches_env_pattern(entry: &str) -> bool {
    let Some((name, value)) = entry.split_once('=') else {
        return false;
    };
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !value.contains('\n')
}

/// `^[a-z0-9]+([._-][a-z0-9]+)*$`
pub fn matches_weight_name(name: &str) -> bool {
    !name.is_empty()
        && name.split(['.', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::{BuildFile, ConcurrencyFile, Mount, RunItem};

    fn build(python: Option<&str>) -> BuildFile {
        BuildFile {
            python_version: python.map(str::to_owned),
            ..BuildFile::default()
        }
    }

    #[test]
    fn valid_config_has_no_schema_error() {
        let config = ConfigFile {
            build: Some(build(Some("3.12"))),
            ..ConfigFile::default()
        };
        assert_eq!(validate(&config), None);
    }

    #[test]
    fn missing_python_version() {
        let config = ConfigFile {
            build: Some(build(None)),
            ..ConfigFile::default()
        };
        assert_eq!(
            validate(&config).unwrap().to_string(),
            "schema error in \"build\": python_version is required"
        );
    }

    #[test]
    fn run_and_predict_together() {
        let config = ConfigFile {
            run: Some("a.py:A".into()),
            predict: Some("b.py:B".into()),
            ..ConfigFile::default()
        };
        assert_eq!(
            validate(&config).unwrap().to_string(),
            "schema error in \"cog.yaml\": Must not validate the schema (not)"
        );
    }

    #[test]
    fn mount_type_must_be_secret() {
        let mut b = build(Some("3.12"));
        b.run = Some(vec![RunItem {
            command: "x".into(),
            mounts: vec![Mount {
                kind: "bind".into(),
                id: "a".into(),
                target: "/a".into(),
            }],
        }]);
        let config = ConfigFile {
            build: Some(b),
            ..ConfigFile::default()
        };
        assert_eq!(
            validate(&config).unwrap().to_string(),
            "schema error in \"build.run.0.mounts.0.type\": build.run.0.mounts.0.type must be one of the following: \"secret\""
        );
    }

    #[test]
    fn run_item_needs_a_command() {
        let mut b = build(Some("3.12"));
        b.run = Some(vec![RunItem::default()]);
        let config = ConfigFile {
            build: Some(b),
            ..ConfigFile::default()
        };
        assert_eq!(
            validate(&config).unwrap().to_string(),
            "schema error in \"build.run.0\": command is required"
        );
    }

    #[test]
    fn concurrency_needs_max_and_env_needs_pattern() {
        let config = ConfigFile {
            concurrency: Some(ConcurrencyFile { max: None }),
            ..ConfigFile::default()
        };
        assert_eq!(
            validate(&config).unwrap().to_string(),
            "schema error in \"concurrency\": max is required"
        );
        let config = ConfigFile {
            environment: Some(vec!["OK=1".into(), "1BAD=x".into()]),
            ..ConfigFile::default()
        };
        assert_eq!(
            validate(&config).unwrap().to_string(),
            "schema error in \"environment.1\": Does not match pattern '^[A-Za-z_][A-Za-z0-9_]*=.*$'"
        );
    }

    #[test]
    fn weight_names() {
        assert!(matches_weight_name("z-image.turbo_v1"));
        assert!(!matches_weight_name("MyModel"));
        assert!(!matches_weight_name("-base"));
        assert!(!matches_weight_name("a..b"));
    }
}
