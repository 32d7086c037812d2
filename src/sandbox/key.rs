//! Cache keys of run steps. A step's layer is a function of the layers below it (their chain
//! id), its command, environment, working directory, mounts (ids and targets, never a
//! secret's content), network, platform, the epoch and the compression; and of this code,
//! through [`SANDBOX_VERSION`].
use layers::Digest;
use serde_json::json;

use super::{RunStep, SandboxOptions};

/// Changes whenever the sandbox would write a different layer for the same inputs.
pub const SANDBOX_VERSION: u32 = 1;

/// The OCI chain id of `diff_ids` (bottom first): the id of a stack of layers. `None` for no
/// layers.
pub fn chain_id<'a>(diff_ids: impl IntoIterator<Item = &'a Digest>) -> Option<Digest> {
    diff_ids.into_iter().fold(None, |chain, diff_id| {
        Some(match chain {
            None => *diff_id,
            Some(chain) => Digest::of(format!("{chain} {diff_id}").as_bytes()),
        })
    })
}

/// The key under which `step`'s layer is cached, above the stack `below` (its chain id).
pub fn step_key(below: Option<&Digest>, step: &RunStep, options: &SandboxOptions) -> String {
    let mounts: Vec<_> = step
        .mounts
        .iter()
        .map(|m| json!({"type": "secret", "id": m.id, "target": m.target}))
        .collect();
    json!({
        "kind": "cog-sandbox-run",
        "version": SANDBOX_VERSION,
        "platform": options.platform.to_string(),
        "below": below.map(ToString::to_string),
        "command": step.command,
        "env": step.env,
        "workdir": step.workdir,
        "mounts": mounts,
        "network": step.network,
        "source_date_epoch": options.source_date_epoch,
        "compression": options.compression,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sandbox::SecretMount;

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        assert_eq!(chain_id([]), None);
        assert_eq!(chain_id([&a]), Some(a));
        assert_eq!(
            chain_id([&a, &b]),
            Some(Digest::of(format!("{a} {b}").as_bytes()))
        );
    }

    #[test]
    fn keys_track_every_input_but_never_a_secret() {
        let options = SandboxOptions::new(layers::Compression::gzip());
        let step = RunStep::new("echo hi > /x");
        let below = Digest::of(b"base");
        let key = step_key(Some(&below), &step, &options);
        assert_eq!(key, step_key(Some(&below), &step.clone(), &options));
        let mut changed = Vec::new();
        changed.push(step_key(Some(&Digest::of(b"other")), &step, &options));
        changed.push(step_key(None, &step, &options));
        changed.push(step_key(
            Some(&below),
            &RunStep::new("echo ho > /x"),
            &options,
        ));
        let mut with_env = step.clone();
        with_env.env.push(("A".into(), "1".into()));
        changed.push(step_key(Some(&below), &with_env, &options));
        let mut with_mount = step.clone();
        with_mount.mounts.push(SecretMount {
            id: "token".into(),
            target: "/run/secrets/token".into(),
        });
        changed.push(step_key(Some(&below), &with_mount, &options));
        let mut offline = step.clone();
        offline.network = false;
        changed.push(step_key(Some(&below), &offline, &options));
        let mut arm = options.clone();
        arm.platform = "linux/arm64".parse().unwrap();
        changed.push(step_key(Some(&below), &step, &arm));
        let mut zstd = options.clone();
        zstd.compression = layers::Compression::zstd();
        changed.push(step_key(Some(&below), &step, &zstd));
        let mut later = options.clone();
        later.source_date_epoch += 1;
        changed.push(step_key(Some(&below), &step, &later));
        for other in &changed {
            assert_ne!(&key, other);
        }
        let unique: std::collections::HashSet<_> = changed.iter().collect();
        assert_eq!(unique.len(), changed.len());
    }
}
