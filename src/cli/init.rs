//! `cog init`: write Cog's project templates into the current directory, skipping any file that
//! already exists (Cog 0.22, `pkg/cli/init.go` with `init-templates/base/`).
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct InitArgs {}

/// The templates, in the order Cog writes them (its embedded directory, sorted by name).
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        ".dockerignore",
        include_str!("init_templates/.dockerignore"),
    ),
    (
        ".github/workflows/push.yaml",
        include_str!("init_templates/.github/workflows/push.yaml"),
    ),
    ("cog.yaml", include_str!("init_templates/cog.yaml")),
    (
        "requirements.txt",
        include_str!("init_templates/requirements.txt"),
    ),
    ("run.py", include_str!("init_templates/run.py")),
];

pub fn run(session: &Session, _args: &InitArgs) -> Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let reporter = &session.reporter;
    reporter.message("Setting up the current directory for use with Cog...");
    for line in init(&cwd)? {
        reporter.message(&line);
    }
    reporter.message("Done! For next steps, check out the docs at https://cog.run/getting-started");
    Ok(ExitCode::SUCCESS)
}

/// Writes the templates into `dir`; returns Cog's line for each (`Created <path>` or
/// `Skipped existing <name>`).
pub fn init(dir: &Path) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for (name, content) in TEMPLATES {
        let path = dir.join(name);
        if fs_err::symlink_metadata(&path).is_ok() {
            lines.push(format!("Skipped existing {name}"));
            continue;
        }
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent)
                .with_context(|| format!("Error creating directory {}", parent.display()))?;
        }
        fs_err::write(&path, content)
            .with_context(|| format!("Error writing {}", path.display()))?;
        lines.push(format!("Created {}", path.display()));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn writes_every_template_then_skips_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("cog.yaml"), "mine").unwrap();
        let lines = init(dir.path()).unwrap();
        assert_eq!(lines.len(), TEMPLATES.len());
        assert!(lines.contains(&"Skipped existing cog.yaml".to_string()));
        assert_eq!(
            fs_err::read_to_string(dir.path().join("cog.yaml")).unwrap(),
            "mine"
        );
        for (name, content) in TEMPLATES {
            if *name != "cog.yaml" {
                assert_eq!(
                    fs_err::read_to_string(dir.path().join(name)).unwrap(),
                    *content
                );
            }
        }
        // A second run writes nothing.
        let again = init(dir.path()).unwrap();
        assert!(
            again.iter().all(|l| l.starts_with("Skipped existing ")),
            "{again:?}"
        );
    }

    #[test]
    fn the_template_config_and_runner_are_valid() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path()).unwrap();
        let config = crate::config::load(dir.path(), &dir.path().join("cog.yaml"));
        assert!(config.is_ok(), "{config:?}");
        let schema = crate::schema::generate(dir.path(), Some("run.py:Runner"), None).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&schema.document).unwrap();
        let input = &doc["components"]["schemas"]["Input"];
        assert_eq!(input["required"], serde_json::json!(["image"]));
        assert_eq!(
            input["properties"]["scale"]["maximum"],
            serde_json::json!(10)
        );
    }
}
