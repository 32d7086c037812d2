//! Nothing in cog.yaml is ignored silently: every field of Cog's JSON schema is in our support
//! table (`config::support::FIELDS`) and in `docs/cog-yaml.md`; a field we cannot do yet fails
//! the build naming it; a field Cog ignores is ignored with a warning naming it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use assert_cmd::Command;
use cog::config::support::{FIELDS, Support};
use serde_json::Value;

/// Field paths of a JSON schema node (`build.run[].mounts[].id`), following `$ref`s.
fn schema_fields(node: &Value, root: &Value, path: &str, out: &mut BTreeSet<String>) {
    if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
        let target = reference
            .trim_start_matches("#/")
            .split('/')
            .fold(root, |n, key| &n[key]);
        return schema_fields(target, root, path, out);
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            let child_path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            out.insert(child_path.clone());
            schema_fields(child, root, &child_path, out);
        }
    }
    if let Some(items) = node.get("items") {
        schema_fields(items, root, &format!("{path}[]"), out);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for alternative in node
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            schema_fields(alternative, root, path, out);
        }
    }
}

/// List markers differ between the schema's shapes (a source or a list of sources).
fn normalize(path: &str) -> String {
    path.replace("[]", "")
}

#[test]
fn every_schema_field_has_a_status_and_a_line_in_the_docs() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace.join("src/config/data/cog_yaml_schema_v1.0.json"))
            .unwrap(),
    )
    .unwrap();
    let mut fields = BTreeSet::new();
    schema_fields(&schema, &schema, "", &mut fields);
    assert!(fields.len() > 25, "{fields:?}");
    let known: BTreeSet<String> = FIELDS.iter().map(|(f, _)| normalize(f)).collect();
    let missing: Vec<&String> = fields
        .iter()
        .filter(|f| !known.contains(&normalize(f)))
        .collect();
    assert!(missing.is_empty(), "fields with no status: {missing:?}");
    let docs = std::fs::read_to_string(workspace.join("docs/cog-yaml.md")).unwrap();
    for (field, support) in FIELDS {
        let word = match support {
            Support::Supported => "supported",
            Support::IgnoredLikeCog(_) => "ignored, with a warning",
            Support::Unsupported(_) => "not supported yet",
        };
        let row = format!("| `{field}` | {word} |");
        assert!(
            docs.contains(&row),
            "docs/cog-yaml.md lacks the row {row:?}"
        );
    }
}

fn cog_plan(dir: &Path) -> std::process::Output {
    Command::cargo_bin("cog")
        .unwrap()
        .current_dir(dir)
        .args(["plan", "--json"])
        .env("NO_COLOR", "1")
        .env("COG_CACHE_DIR", dir.join(".cache"))
        .output()
        .unwrap()
}

fn project(yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cog.yaml"), yaml).unwrap();
    dir
}

/// No field is refused any more (`weights:` was the last); were one marked `Unsupported` again,
/// `support::check` must refuse it and this test must cover its error.
#[test]
fn no_field_is_refused_and_weights_plan() {
    assert!(
        FIELDS
            .iter()
            .all(|(_, support)| !matches!(support, Support::Unsupported(_))),
        "an unsupported field needs a test of its error"
    );
    let dir = project(
        "build:\n  python_version: \"3.11\"\nmodel: reg.io/me/m\nweights:\n  - name: w\n    target: /src/w\n    source: {uri: ./w}\n",
    );
    let output = cog_plan(dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
}

#[test]
fn ignored_fields_are_named_in_a_warning() {
    let dir = project(
        "build:\n  python_version: \"3.11\"\n  fast: true\n  pyhton_packages: [x]\nconcurrency:\n  max: 1\n  default_target: 2\ntests: []\n",
    );
    let output = cog_plan(dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    for wanted in [
        "line 3: `build.fast` is ignored: removed in Cog 0.17",
        "line 4: unknown field `build.pyhton_packages` is ignored",
        "line 7: `concurrency.default_target` is ignored",
        "line 8: `tests` is ignored",
    ] {
        assert!(stderr.contains(wanted), "no {wanted:?} in {stderr}");
    }
}
