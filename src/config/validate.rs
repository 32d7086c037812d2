//! Semantic validation (Cog's `ValidateConfigFile`): every error and deprecation warning is
//! collected, in Cog's order.

use std::path::Path;

use super::compat;
use super::env::parse_environment;
use super::error::{Issue, Warning};
use super::file::{ConfigFile, WeightFile};
use super::requirements;
use super::schema;
use crate::go::quote as go_quote;

pub const MIN_PYTHON: (u64, u64) = (3, 10);
pub const MIN_PYTHON_FOR_CONCURRENCY: u64 = 11;
pub const MIN_CUDA_MAJOR: u64 = 11;

#[derive(Debug, Default)]
pub struct Outcome {
    pub issues: Vec<Issue>,
    pub warnings: Vec<Warning>,
}

pub fn validate(config: &ConfigFile, project_dir: &Path) -> Outcome {
    let mut out = Outcome::default();
    if let Some(issue) = schema::validate(config) {
        out.issues.push(issue);
    }
    validate_run(config, &mut out);
    validate_train(config, &mut out);
    validate_build(config, project_dir, &mut out);
    validate_environment(config, &mut out);
    validate_concurrency(config, &mut out);
    validate_model(config, &mut out);
    validate_weights(config, &mut out);
    deprecated_build_fields(config, &mut out);
    out
}

fn is_ref(value: &str) -> bool {
    value.split(".py:").count() == 2
}

fn validate_run(config: &ConfigFile, out: &mut Outcome) {
    let run = config.run.as_deref().filter(|r| !r.is_empty());
    let predict = config.predict.as_deref().filter(|p| !p.is_empty());
    if predict.is_some() {
        out.warnings.push(Warning::Deprecated {
            field: "predict".into(),
            replacement: "run".into(),
            message: "use run to point at run.py:Runner".into(),
        });
    }
    if run.is_some() && predict.is_some() {
        out.issues.push(Issue::invalid(
            "run",
            "",
            "only one of run or predict can be set",
        ));
        return;
    }
    let field = if config.run.is_some() {
        "run"
    } else {
        "predict"
    };
    if let Some(reference) = config.resolved_run().filter(|r| !r.is_empty())
        && !is_ref(reference)
    {
        out.issues.push(Issue::invalid(
            field,
            reference,
            "must be in the form 'run.py:Runner'",
        ));
    }
}

fn validate_train(config: &ConfigFile, out: &mut Outcome) {
    if let Some(train) = config.train.as_deref().filter(|t| !t.is_empty())
        && !is_ref(train)
    {
        out.issues.push(Issue::invalid(
            "train",
            train,
            "must be in the form 'train.py:Trainer'",
        ));
    }
}

fn validate_build(config: &ConfigFile, project_dir: &Path, out: &mut Outcome) {
    let Some(build) = &config.build else { return };
    match build.python_version.as_deref() {
        None | Some("") => out.issues.push(Issue::invalid(
            "build.python_version",
            "",
            "python_version is required. Add it to the build section of your cog.yaml, e.g. `python_version: \"3.13\"`",
        )),
        Some(version) => {
            if let Err(issue) = check_python_version(version) {
                out.issues.push(issue);
            }
        }
    }
    let requirements = build
        .python_requirements
        .as_deref()
        .filter(|r| !r.is_empty());
    if build
        .python_packages
        .as_ref()
        .is_some_and(|p| !p.is_empty())
        && requirements.is_some()
    {
        out.issues.push(Issue::invalid(
            "build",
            "",
            "only one of python_packages or python_requirements can be set, not both",
        ));
    }
    if let Some(path) = requirements
        && !project_dir.join(path).exists()
    {
        out.issues.push(Issue::invalid(
            "build.python_requirements",
            path,
            "file does not exist",
        ));
    }
    if let Some(cuda) = build.cuda.as_deref().filter(|c| !c.is_empty())
        && let Err(issue) = check_cuda_version(cuda)
    {
        out.issues.push(issue);
    }
    for item in build.run.iter().flatten() {
        if item.command.contains('\n') {
            out.issues.push(Issue::Other(format!(
                "One of the commands in 'run' contains a new line, which won't work. You need to create a new list item in YAML prefixed with '-' for each command.\n\nThis is the offending line: {}",
                item.command
            )));
        }
    }
    if build.gpu == Some(true) {
        validate_gpu(config, project_dir, out);
    }
}

/// `X.Y` or `X.Y.Z`, at least 3.10.
pub fn check_python_version(version: &str) -> Result<(u64, u64), Issue> {
    let version = version.trim();
    let invalid = |message: &str| Issue::invalid("build.python_version", version, message);
    let parts: Vec<&str> = version.splitn(3, '.').collect();
    if parts.len() < 2 {
        return Err(invalid(
            "must include major and minor version (e.g., '3.11')",
        ));
    }
    let major: u64 = parts[0]
        .parse()
        .map_err(|_| invalid("invalid major version number"))?;
    let minor: u64 = parts[1]
        .parse()
        .map_err(|_| invalid("invalid minor version number"))?;
    if (major, minor) < MIN_PYTHON {
        return Err(invalid(&format!(
            "minimum supported Python version is {}.{}",
            MIN_PYTHON.0, MIN_PYTHON.1
        )));
    }
    Ok((major, minor))
}

fn check_cuda_version(cuda: &str) -> Result<(), Issue> {
    let parts: Vec<&str> = cuda.split('.').collect();
    if parts.len() < 2 {
        return Err(Issue::invalid(
            "build.cuda",
            cuda,
            "must include both major and minor versions (e.g., '11.8')",
        ));
    }
    let major: u64 = parts[0]
        .parse()
        .map_err(|_| Issue::invalid("build.cuda", cuda, "invalid major version number"))?;
    if major < MIN_CUDA_MAJOR {
        return Err(Issue::invalid(
            "build.cuda",
            cuda,
            format!("minimum supported CUDA version is {MIN_CUDA_MAJOR}"),
        ));
    }
    Ok(())
}

fn validate_gpu(config: &ConfigFile, project_dir: &Path, out: &mut Outcome) {
    let Some(build) = &config.build else { return };
    let cuda = build.cuda.as_deref().filter(|c| !c.is_empty());
    if let (Some(cuda), Some(cudnn)) = (cuda, build.cudnn.as_deref().filter(|c| !c.is_empty())) {
        let compatible = compat::compatible_cudnns_for_cuda(cuda);
        if !compatible.is_empty() && !compatible.iter().any(|c| c == cudnn) {
            out.issues.push(Issue::Incompatible {
                component1: "CUDA".into(),
                version1: cuda.into(),
                component2: "CuDNN".into(),
                version2: cudnn.into(),
                message: format!("compatible CuDNN versions are: {}", compatible.join(", ")),
            });
        }
    }
    let lines = match build
        .python_requirements
        .as_deref()
        .filter(|r| !r.is_empty())
    {
        Some(path) => requirements::read_lines(&project_dir.join(path)).unwrap_or_default(),
        None => build.python_packages.clone().unwrap_or_default(),
    };
    let Some(cuda) = cuda else { return };
    if let Some(tf) = requirements::package_version(&lines, "tensorflow").filter(|v| !v.is_empty())
        && let Some((tf_cuda, _)) = compat::cuda_from_tf(&tf)
        && !cuda.starts_with(tf_cuda.split('.').next().unwrap_or_default())
    {
        out.issues.push(Issue::Incompatible {
            component1: "TensorFlow".into(),
            version1: tf.clone(),
            component2: "CUDA".into(),
            version2: cuda.into(),
            message: format!("TensorFlow {tf} requires CUDA {tf_cuda}"),
        });
    }
}

fn validate_environment(config: &ConfigFile, out: &mut Outcome) {
    if let Some(entries) = config.environment.as_ref().filter(|e| !e.is_empty())
        && let Err(message) = parse_environment(entries)
    {
        out.issues.push(Issue::invalid("environment", "", message));
    }
}

fn validate_concurrency(config: &ConfigFile, out: &mut Outcome) {
    let Some(max) = config.concurrency.as_ref().and_then(|c| c.max) else {
        return;
    };
    out.warnings.push(Warning::Deprecated {
        field: "concurrency.max".into(),
        replacement: "@cog.concurrent(max=...)".into(),
        message: "configure prediction concurrency with @cog.concurrent on your async run() method instead".into(),
    });
    if max < 1 {
        out.issues.push(Issue::invalid(
            "concurrency.max",
            max.to_string(),
            "must be at least 1",
        ));
    }
    if max > 1
        && let Some(version) = config
            .build
            .as_ref()
            .and_then(|b| b.python_version.as_deref())
        && let Some((major, minor)) = split_python_version(version)
        && major == MIN_PYTHON.0
        && minor < MIN_PYTHON_FOR_CONCURRENCY
    {
        out.issues.push(Issue::invalid(
            "concurrency.max",
            max.to_string(),
            format!(
                "concurrency requires Python {}.{MIN_PYTHON_FOR_CONCURRENCY} or higher",
                MIN_PYTHON.0
            ),
        ));
    }
}

fn split_python_version(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.trim().splitn(3, '.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn validate_model(config: &ConfigFile, out: &mut Outcome) {
    let Some(model) = config.model.as_deref().filter(|m| !m.is_empty()) else {
        return;
    };
    if config.image.as_deref().is_some_and(|i| !i.is_empty()) {
        out.issues.push(Issue::invalid(
            "model",
            "",
            "'model' and 'image' cannot both be set",
        ));
    }
    match parse_repository(model) {
        Err(reason) => out.issues.push(Issue::invalid(
            "model",
            model,
            format!("invalid repository: {reason}"),
        )),
        Ok(true) => out.issues.push(Issue::invalid(
            "model",
            model,
            "must be a bare repository — tags and digests are not allowed",
        )),
        Ok(false) => {}
    }
}

/// Parses a Docker reference; `Ok(true)` when it carries a tag or digest.
fn parse_repository(reference: &str) -> Result<bool, String> {
    let (name, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (reference, None),
    };
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].find(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    let mut components: Vec<&str> = repo.split('/').collect();
    if components.len() > 1 && (components[0].contains(['.', ':']) || components[0] == "localhost")
    {
        let domain = components.remove(0);
        if !domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        {
            return Err("repository name must be lowercase".into());
        }
    }
    for component in &components {
        if !is_path_component(component) {
            return Err(if component.bytes().any(|b| b.is_ascii_uppercase()) {
                "repository name must be lowercase".into()
            } else {
                "invalid reference format".into()
            });
        }
    }
    if let Some(tag) = tag
        && (tag.is_empty()
            || tag.len() > 128
            || !tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')))
    {
        return Err("invalid reference format".into());
    }
    if let Some(digest) = digest
        && !digest.contains(':')
    {
        return Err("invalid reference format".into());
    }
    Ok(tag.is_some() || digest.is_some())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    if bytes.is_empty() || !bytes[0].is_ascii_lowercase() && !bytes[0].is_ascii_digit() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && matches!(bytes[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let separator = &component[start..i];
        // Any other byte (an uppercase letter, `!`) is no separator: it ends the loop here, as
        // an empty separator would otherwise loop forever (found by tests/fuzz.rs).
        let ok = matches!(separator, "." | "_" | "__")
            || (!separator.is_empty() && separator.bytes().all(|b| b == b'-'));
        if !ok || i == bytes.len() {
            return false;
        }
    }
    true
}

fn validate_weights(config: &ConfigFile, out: &mut Outcome) {
    let Some(weights) = config.weights.as_ref().filter(|w| !w.is_empty()) else {
        return;
    };
    if config.model.as_deref().is_none_or(str::is_empty) {
        let message = if config.image.as_deref().is_some_and(|i| !i.is_empty()) {
            "weights require 'model', not 'image' — rename 'image' to 'model'"
        } else {
            "weights require 'model' in cog.yaml"
        };
        out.issues.push(Issue::invalid("weights", "", message));
    }
    let mut names: Vec<&str> = Vec::new();
    let mut targets: Vec<(usize, &str)> = Vec::new();
    for (i, weight) in weights.iter().enumerate() {
        let field = format!("weights[{i}]");
        validate_weight_name(&field, weight, &mut names, out);
        validate_weight_target(i, &field, weight, &mut targets, out);
        if weight.source.is_empty() {
            out.issues.push(Issue::invalid(
                format!("{field}.source"),
                "",
                "source is required",
            ));
        }
        for (j, source) in weight.source.iter().enumerate() {
            let source_field = if weight.source.len() > 1 {
                format!("{field}.source[{j}]")
            } else {
                format!("{field}.source")
            };
            if source.uri.trim().is_empty() {
                out.issues.push(Issue::invalid(
                    format!("{source_field}.uri"),
                    "",
                    "uri is required",
                ));
            }
            for (kind, patterns) in [("include", &source.include), ("exclude", &source.exclude)] {
                for pattern in patterns {
                    if let Err(message) = check_pattern(pattern) {
                        out.issues.push(Issue::invalid(
                            format!("{source_field}.{kind}"),
                            pattern.as_str(),
                            message,
                        ));
                    }
                }
            }
        }
    }
}

fn validate_weight_name<'a>(
    field: &str,
    weight: &'a WeightFile,
    names: &mut Vec<&'a str>,
    out: &mut Outcome,
) {
    if weight.name.is_empty() {
        out.issues.push(Issue::invalid(
            format!("{field}.name"),
            "",
            "name is required",
        ));
    } else if !schema::matches_weight_name(&weight.name) {
        out.issues.push(Issue::invalid(
            format!("{field}.name"),
            weight.name.as_str(),
            "must contain only lowercase letters, digits, and single separators (., _, -) between them",
        ));
    } else if names.contains(&weight.name.as_str()) {
        out.issues.push(Issue::invalid(
            format!("{field}.name"),
            weight.name.as_str(),
            "duplicate weight name",
        ));
    } else {
        names.push(&weight.name);
    }
}

fn validate_weight_target<'a>(
    index: usize,
    field: &str,
    weight: &'a WeightFile,
    targets: &mut Vec<(usize, &'a str)>,
    out: &mut Outcome,
) {
    let target = weight.target.as_str();
    let field = format!("{field}.target");
    if target.is_empty() {
        out.issues
            .push(Issue::invalid(field, "", "target is required"));
        return;
    }
    if !target.starts_with('/') {
        out.issues.push(Issue::invalid(
            field,
            target,
            "target must be an absolute path",
        ));
        return;
    }
    let clean = target.trim_end_matches('/');
    if clean.is_empty() {
        out.issues.push(Issue::invalid(
            field,
            target,
            "target must not be the root directory",
        ));
        return;
    }
    for &(other_index, other) in targets.iter() {
        if other == clean {
            out.issues.push(Issue::invalid(
                field.clone(),
                target,
                "duplicate weight target",
            ));
            return;
        }
        if clean.starts_with(&format!("{other}/")) || other.starts_with(&format!("{clean}/")) {
            out.issues.push(Issue::invalid(
                field.clone(),
                target,
                format!(
                    "target overlaps with weights[{other_index}] target {}",
                    go_quote(other)
                ),
            ));
            return;
        }
    }
    targets.push((index, clean));
}

fn check_pattern(pattern: &str) -> Result<(), &'static str> {
    let trimmed = pattern.trim();
    if trimmed.is_empty() {
        return Err("pattern must not be empty");
    }
    if trimmed.starts_with('!') {
        return Err("negation patterns (!) are not supported; use exclude instead");
    }
    if trimmed.contains('\\') {
        return Err("pattern must use forward slashes (/) as path separators");
    }
    Ok(())
}

fn deprecated_build_fields(config: &ConfigFile, out: &mut Outcome) {
    let Some(build) = &config.build else { return };
    if build
        .python_packages
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        out.warnings.push(Warning::Deprecated {
            field: "build.python_packages".into(),
            replacement: "build.python_requirements".into(),
            message: "use a requirements.txt file instead".into(),
        });
    }
    if build.pre_install.as_ref().is_some_and(|p| !p.is_empty()) {
        out.warnings.push(Warning::Deprecated {
            field: "build.pre_install".into(),
            replacement: "build.run".into(),
            message: "use build.run commands instead".into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_references() {
        assert_eq!(
            parse_repository("registry.example.com/acme/my-model"),
            Ok(false)
        );
        assert_eq!(parse_repository("localhost:5000/acme/my-model"), Ok(false));
        assert_eq!(parse_repository("my-model"), Ok(false));
        assert_eq!(parse_repository("acme/my-model:v1"), Ok(true));
        assert_eq!(parse_repository("acme/my-model@sha256:abc"), Ok(true));
        assert!(parse_repository("Registry.Example.Com/ACME/Model").is_err());
        assert!(parse_repository("acme//x").is_err());
        // A byte that is neither a letter, a digit nor a separator after the first: these
        // looped forever (found by tests/fuzz.rs).
        assert_eq!(
            parse_repository("acme/myModel"),
            Err("repository name must be lowercase".into())
        );
        assert!(parse_repository("acme/a!b").is_err());
    }
}
