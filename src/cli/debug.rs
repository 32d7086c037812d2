//! `cog debug` (hidden): prints a Dockerfile equivalent to the build plan, for people moving a
//! project to or from `docker build`. Each layer of the plan becomes the instruction that makes
//! the same files: pinned apt packages, pinned wheels by URL and hash, build commands with their
//! secret mounts, the source copied to `/src`; then the image settings.
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;

use super::args::BuildFlags;
use crate::base::BaseImage;
use crate::blocks::PythonStack;
use crate::plan::{LayerContent, Plan, Stack};
use crate::resolve::{LockMode, Project};
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct DebugArgs {
    /// The image name to use for the generated Dockerfile
    #[arg(long)]
    image_name: Option<String>,
    #[command(flatten)]
    flags: BuildFlags,
}

pub fn run(session: &Session, args: &DebugArgs) -> Result<ExitCode> {
    args.flags.check_compat()?;
    let mut options = args.flags.resolve_options();
    // Like `cog plan`: the lock files are read, never written.
    options.lock_mode = LockMode::ReadOnly;
    let project = Project::open(session, &options)?;
    let inputs = project.resolve(session, &options)?;
    let plan = PythonStack.plan(&inputs)?;
    let name = super::build::image_name(args.image_name.as_deref(), &project.config, &project.dir);
    print!("{}", dockerfile(&plan, &name));
    Ok(ExitCode::SUCCESS)
}

/// The Dockerfile for `plan`; `name` only goes into its header comment.
pub fn dockerfile(plan: &Plan, name: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# syntax=docker/dockerfile:1");
    let _ = writeln!(
        out,
        "# {name}: the plan of `cog build` as a Dockerfile (cog debug). Build it with\n#   docker build --platform {} -t {name} .",
        plan.platform
    );
    from_base(&mut out, &plan.base);
    // ENV lines written so far, so each build command sees the environment the plan gives it.
    let mut env: Vec<(String, String)> = Vec::new();
    for layer in &plan.layers {
        let _ = writeln!(out, "\n# {} ({})", layer.id, layer.phase.as_str());
        match &layer.content {
            LayerContent::Tree {
                source,
                dest,
                excludes,
            } => {
                if !excludes.is_empty() {
                    let _ = writeln!(
                        out,
                        "# excluded (as .dockerignore excludes them): {}",
                        excludes.join(" ")
                    );
                }
                let source = if source.is_empty() { "." } else { source };
                let _ = writeln!(out, "COPY {source} {dest}");
            }
            LayerContent::Files { files } => {
                for file in files {
                    if let Some(target) = &file.link {
                        let _ = writeln!(out, "RUN ln -sf {target} {}", file.path);
                        continue;
                    }
                    let marker = heredoc_marker(&file.contents);
                    let _ = write!(
                        out,
                        "COPY --chmod={:o} <<'{marker}' {}\n{}",
                        file.mode, file.path, file.contents
                    );
                    if !file.contents.ends_with('\n') && !file.contents.is_empty() {
                        out.push('\n');
                    }
                    let _ = writeln!(out, "{marker}");
                }
            }
            LayerContent::ProjectFiles { files, .. } => {
                // Large files: one COPY each, below the source (a layer of their own).
                for file in files {
                    let _ = writeln!(out, "COPY {0} /src/{0}", file.path);
                }
            }
            LayerContent::RuntimeSchema {
                predict_ref,
                train_ref,
                reasons,
            } => {
                // Cog <= 0.16's way: the schema read from the imported runner.
                let _ = writeln!(
                    out,
                    "# The schema needs the predictor imported in the image (cog build computes it):"
                );
                for reason in reasons {
                    for line in reason.lines() {
                        let _ = writeln!(out, "#   {line}");
                    }
                }
                let refs: Vec<&str> = [predict_ref, train_ref]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                let _ = writeln!(
                    out,
                    "# ({}) -> /src/.cog/openapi_schema.json and the run.cog.openapi_schema label",
                    refs.join(", ")
                );
            }
            LayerContent::Debs { lock } => {
                let packages: Vec<String> = lock
                    .packages
                    .iter()
                    .map(|p| format!("{}={}", p.name, p.version))
                    .collect();
                apt_install(&mut out, &packages);
            }
            LayerContent::Run {
                command,
                env: wanted,
                mounts,
            } => {
                set_env(&mut out, &mut env, wanted);
                let mut line = "RUN".to_string();
                for mount in mounts {
                    let _ = write!(
                        line,
                        " --mount=type=secret,id={},target={}",
                        mount.id, mount.target
                    );
                }
                let _ = writeln!(out, "{line} {}", continued(command));
            }
            LayerContent::Wheels { python, packages } => {
                let requirements: Vec<String> = packages
                    .iter()
                    .map(|p| {
                        let url = p.direct_url.as_deref().unwrap_or(&p.url);
                        let mut line = format!("{} @ {url}", p.name);
                        if let Some(sha) = &p.sha256 {
                            let _ = write!(line, " --hash=sha256:{sha}");
                        }
                        line
                    })
                    .collect();
                let marker = "COG_REQUIREMENTS";
                let path = format!("/tmp/requirements-{}.txt", layer.id);
                let _ = writeln!(
                    out,
                    "COPY <<'{marker}' {path}\n{}\n{marker}",
                    requirements.join("\n")
                );
                let _ = writeln!(
                    out,
                    "RUN {} -m pip install --no-cache-dir --no-deps --break-system-packages -r {path} && rm {path}",
                    python.interpreter
                );
            }
        }
    }
    let image = &plan.image;
    out.push_str("\n# image settings\n");
    set_env(&mut out, &mut env, &image.env);
    for (key, value) in &image.labels {
        let _ = writeln!(out, "LABEL {}={}", quote(key), quote(value));
    }
    for port in &image.exposed_ports {
        let _ = writeln!(out, "EXPOSE {port}");
    }
    if let Some(dir) = &image.workdir {
        let _ = writeln!(out, "WORKDIR {dir}");
    }
    if let Some(entrypoint) = &image.entrypoint {
        let _ = writeln!(out, "ENTRYPOINT {}", json_array(entrypoint));
    }
    if let Some(cmd) = &image.cmd {
        let _ = writeln!(out, "CMD {}", json_array(cmd));
    }
    out
}

fn from_base(out: &mut String, base: &BaseImage) {
    match base {
        BaseImage::Registry { reference } => {
            let _ = writeln!(out, "FROM {reference}");
        }
        BaseImage::Scratch => {
            let _ = writeln!(out, "FROM scratch");
        }
        BaseImage::OciLayout { path, tag } | BaseImage::OciArchive { path, tag } => {
            let _ = writeln!(
                out,
                "# The base is a local image ({path}{}): load it into Docker first and name it here.\nFROM cog-base",
                tag.as_deref().map(|t| format!(":{t}")).unwrap_or_default()
            );
        }
        BaseImage::DockerArchive { path } => {
            let _ = writeln!(
                out,
                "# The base is a local image: `docker load -i {path}` first and name it here.\nFROM cog-base"
            );
        }
        BaseImage::Assembled {
            distro,
            suite,
            python_version,
            lock,
        } => {
            let _ = writeln!(
                out,
                "# cog assembles this base from {distro} {suite} packages (Python {python_version}); the official image plus the same packages is equivalent."
            );
            let tag = if distro == "debian" {
                format!("{suite}-slim")
            } else {
                suite.clone()
            };
            let _ = writeln!(out, "FROM {distro}:{tag}");
            let packages: Vec<String> = lock
                .packages
                .iter()
                .map(|p| format!("{}={}", p.name, p.version))
                .collect();
            apt_install(out, &packages);
        }
    }
}

fn apt_install(out: &mut String, packages: &[String]) {
    if packages.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "RUN apt-get update && apt-get install -y --no-install-recommends \\\n    {} \\\n && rm -rf /var/lib/apt/lists/*",
        packages.join(" \\\n    ")
    );
}

/// `ENV` lines for the pairs of `wanted` that differ from what was set so far.
fn set_env(out: &mut String, env: &mut Vec<(String, String)>, wanted: &[(String, String)]) {
    for (key, value) in wanted {
        let current = env.iter_mut().find(|(k, _)| k == key);
        match current {
            Some((_, v)) if v == value => continue,
            Some((_, v)) => v.clone_from(value),
            None => env.push((key.clone(), value.clone())),
        }
        let _ = writeln!(out, "ENV {key}={}", quote(value));
    }
}

/// A double-quoted Dockerfile word: `\`, `"` and `$` escaped (no variable expansion).
fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '\\' | '"' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_array(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_default()
}

/// A shell command for a `RUN` instruction: a one-line command as is, a script of several lines
/// as a heredoc (each line its own command, as the sandbox's `/bin/sh -c` runs it).
fn continued(command: &str) -> String {
    let command = command.trim_end();
    if command.contains('\n') {
        let marker = heredoc_marker(command);
        format!("<<'{marker}'\n{command}\n{marker}")
    } else {
        command.to_string()
    }
}

/// A heredoc end marker that does not occur in `contents`.
fn heredoc_marker(contents: &str) -> String {
    let mut marker = "COG_EOF".to_string();
    while contents.lines().any(|l| l == marker) {
        marker.push('_');
    }
    marker
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use super::*;
    use crate::plan::{ImageSettings, InlineFile, LayerStep, Phase, PythonLayout, SecretMount};

    #[test]
    fn a_plan_becomes_a_dockerfile() {
        let layer = |id: &str, phase, content| LayerStep {
            id: id.into(),
            phase,
            block: "test".into(),
            created_by: String::new(),
            content,
        };
        let plan = Plan {
            version: 2,
            stack: "python".into(),
            platform: "linux/amd64".into(),
            base: BaseImage::Registry {
                reference: "python:3.12-slim".into(),
            },
            base_reason: None,
            layers: vec![
                layer(
                    "wheels-app",
                    Phase::AppDeps,
                    LayerContent::Wheels {
                        python: PythonLayout::python_slim("3.12"),
                        packages: vec![wheels::LockedPackage {
                            name: "six".into(),
                            version: "1.16.0".into(),
                            filename: "six-1.16.0-py2.py3-none-any.whl".into(),
                            url: "https://files.example/six-1.16.0-py2.py3-none-any.whl".into(),
                            sha256: Some("ab".repeat(32)),
                            hashes: Vec::new(),
                            size: None,
                            direct_url: None,
                            build: None,
                        }],
                    },
                ),
                layer(
                    "run-0",
                    Phase::Commands,
                    LayerContent::Run {
                        command: "echo $HOME\ncat /run/secrets/tok > /x".into(),
                        env: vec![("A".into(), "1".into())],
                        mounts: vec![SecretMount {
                            id: "tok".into(),
                            target: "/run/secrets/tok".into(),
                        }],
                    },
                ),
                layer(
                    "schema",
                    Phase::AppSource,
                    LayerContent::Files {
                        files: vec![InlineFile {
                            path: "/src/.cog/openapi_schema.json".into(),
                            mode: 0o644,
                            contents: "{\"a\": 1}".into(),
                            link: None,
                        }],
                    },
                ),
                layer(
                    "source",
                    Phase::AppSource,
                    LayerContent::Tree {
                        source: ".".into(),
                        dest: "/src".into(),
                        excludes: vec![".git".into()],
                    },
                ),
            ],
            image: ImageSettings {
                env: vec![("A".into(), "1".into()), ("B".into(), "x $y \"z\"".into())],
                labels: BTreeMap::from([("run.cog.config".into(), "{\"build\":{}}".into())]),
                workdir: Some("/src".into()),
                entrypoint: Some(vec!["/usr/bin/tini".into(), "--".into()]),
                cmd: Some(vec!["python".into(), "-m".into(), "cog.server.http".into()]),
                exposed_ports: vec!["5000/tcp".into()],
                annotations: BTreeMap::new(),
            },
        };
        insta::assert_snapshot!(dockerfile(&plan, "model:latest"));
    }

    #[test]
    fn words_are_quoted_without_expansion() {
        assert_eq!(quote(r#"a "b" $c \d"#), r#""a \"b\" \$c \\d""#);
        assert_eq!(heredoc_marker("x\nCOG_EOF\n"), "COG_EOF_");
    }
}
