//! The image config of a built image: the base's config with the plan's settings applied,
//! as Docker would after the equivalent `ENV`/`LABEL`/`WORKDIR`/`EXPOSE`/`CMD` lines.
use std::collections::BTreeMap;

use crate::oci::{ContainerConfig, History, ImageConfig, Platform};
use crate::plan::ImageSettings;

/// Applies `settings` to `base` (or an empty config for `scratch`) and appends one history entry
/// per new layer (`(step id, created_by)`). No timestamps are written unless `SOURCE_DATE_EPOCH`
/// asks for one: the same inputs give the same config.
pub fn apply(
    base: Option<&ImageConfig>,
    platform: &Platform,
    settings: &ImageSettings,
    layers: &[(&str, &str)],
) -> ImageConfig {
    let mut config = base.cloned().unwrap_or_else(|| ImageConfig {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        ..ImageConfig::default()
    });
    // A base's creation time says nothing about this image; Cog's builds are reproducible only
    // with a fixed timestamp, and we write none unless asked.
    config.created = source_date_epoch_rfc3339();
    let env = env_over(base, &settings.env);
    let container = config.config.get_or_insert_with(ContainerConfig::default);
    container.env = Some(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect());

    if !settings.labels.is_empty() {
        let labels = container.labels.get_or_insert_with(BTreeMap::new);
        labels.extend(settings.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(dir) = &settings.workdir {
        container.working_dir = Some(dir.clone());
    }
    if !settings.exposed_ports.is_empty() {
        let ports = container.exposed_ports.get_or_insert_with(BTreeMap::new);
        for port in &settings.exposed_ports {
            ports.insert(port.clone(), serde_json::json!({}));
        }
    }
    if let Some(entrypoint) = &settings.entrypoint {
        container.entrypoint = Some(entrypoint.clone());
    }
    if let Some(cmd) = &settings.cmd {
        container.cmd = Some(cmd.clone());
    }

    for (id, created_by) in layers {
        config.history.push(History {
            created: config.created.clone(),
            created_by: Some((*created_by).to_string()),
            comment: Some(format!("cog-rs: {id}")),
            ..History::default()
        });
    }
    config
}

/// The base's environment with `settings` applied in order, as `ENV` lines would apply them
/// (`$NAME` expanded from what is set so far; a name set again keeps its place).
pub fn env_over(
    base: Option<&ImageConfig>,
    settings: &[(String, String)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = base
        .and_then(|c| c.config.as_ref())
        .and_then(|c| c.env.as_ref())
        .into_iter()
        .flatten()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.clone(), String::new()),
        })
        .collect();
    for (name, value) in settings {
        let expanded = expand(value, &env);
        match env.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = expanded,
            None => env.push((name.clone(), expanded)),
        }
    }
    env
}

/// `$NAME` and `${NAME}` expanded from `env`, as Docker's `ENV` does; unknown names become "".
fn expand(value: &str, env: &[(String, String)]) -> String {
    let lookup = |name: &str| {
        env.iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(braced) = after.strip_prefix('{')
            && let Some(end) = braced.find('}')
        {
            out.push_str(lookup(&braced[..end]));
            rest = &braced[end + 1..];
            continue;
        }
        let len = after
            .char_indices()
            .find(|(i, c)| {
                !(c.is_ascii_alphanumeric() || *c == '_') || (*i == 0 && c.is_ascii_digit())
            })
            .map_or(after.len(), |(i, _)| i);
        if len == 0 {
            out.push('$');
        } else {
            out.push_str(lookup(&after[..len]));
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// `SOURCE_DATE_EPOCH` as an RFC 3339 timestamp, when set (what BuildKit's `--timestamp` does).
fn source_date_epoch_rfc3339() -> Option<String> {
    let secs: i64 = std::env::var("SOURCE_DATE_EPOCH")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let time = time::OffsetDateTime::from_unix_timestamp(secs).ok()?;
    time.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn expands_like_docker_env() {
        let base = env(&[("PATH", "/usr/bin"), ("EMPTY", "")]);
        assert_eq!(expand("$PATH:/x", &base), "/usr/bin:/x");
        assert_eq!(expand("${PATH}/y", &base), "/usr/bin/y");
        assert_eq!(expand("$LD_LIBRARY_PATH:/lib", &base), ":/lib");
        assert_eq!(expand("cost $5", &base), "cost $5", "not a name: kept");
        assert_eq!(expand("a$", &base), "a$");
        assert_eq!(expand("no vars", &base), "no vars");
    }

    #[test]
    fn base_env_is_kept_and_overridden_in_place() {
        let base = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            config: Some(ContainerConfig {
                env: Some(vec![
                    "PATH=/usr/local/bin:/usr/bin".into(),
                    "LANG=C.UTF-8".into(),
                ]),
                cmd: Some(vec!["python3".into()]),
                ..ContainerConfig::default()
            }),
            created: Some("2024-01-01T00:00:00Z".into()),
            ..ImageConfig::default()
        };
        let settings = ImageSettings {
            env: env(&[
                ("LANG", "en_US.UTF-8"),
                ("LD_LIBRARY_PATH", "$LD_LIBRARY_PATH:/usr/lib"),
            ]),
            workdir: Some("/src".into()),
            cmd: Some(vec!["python".into(), "-m".into(), "cog.server.http".into()]),
            exposed_ports: vec!["5000/tcp".into()],
            ..ImageSettings::default()
        };
        let out = apply(Some(&base), &Platform::linux_amd64(), &settings, &[]);
        let c = out.config.unwrap();
        assert_eq!(
            c.env.unwrap(),
            [
                "PATH=/usr/local/bin:/usr/bin",
                "LANG=en_US.UTF-8",
                "LD_LIBRARY_PATH=:/usr/lib"
            ]
        );
        assert_eq!(c.working_dir.as_deref(), Some("/src"));
        assert_eq!(c.cmd.unwrap(), ["python", "-m", "cog.server.http"]);
        assert!(c.exposed_ports.unwrap().contains_key("5000/tcp"));
        assert_eq!(
            out.created, None,
            "no timestamp unless SOURCE_DATE_EPOCH is set"
        );
    }
}
