//! `build.run` and `pre_install`: Cog's `RUN` steps, after the Python packages and before the
//! source. And `COG_CA_CERT`: the certificates Cog installs first, so that the commands' (and the
//! model's) HTTPS downloads through a proxy work.
use std::fmt::Write as _;

use crate::plan::{
    Block, Composer, InlineFile, LayerContent, Phase, PlanError, PlanInputs, SecretMount,
};

/// Where Cog puts `COG_CA_CERT` (`pkg/dockerfile/cacert.go`).
pub const CA_CERT_PATH: &str = "/usr/local/share/ca-certificates/cog-ca-cert.crt";
/// The system bundle `update-ca-certificates` writes.
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// `COG_CA_CERT`: the certificate file, `update-ca-certificates` (with the certificate also
/// appended to the bundle, as Cog does for images where the tool does nothing), and
/// `SSL_CERT_FILE`/`REQUESTS_CA_BUNDLE` pointing at the bundle.
#[derive(Debug)]
pub struct CaCertBlock;

impl Block for CaCertBlock {
    fn name(&self) -> &'static str {
        "ca-cert"
    }

    fn applies(&self, inputs: &PlanInputs) -> bool {
        inputs.ca_cert.is_some()
    }

    fn contribute(&self, inputs: &PlanInputs, composer: &mut Composer) -> Result<(), PlanError> {
        let Some(cert) = &inputs.ca_cert else {
            return Ok(());
        };
        composer.add_layer(
            Phase::System,
            "ca-cert-file",
            format!("COPY cog-ca-cert.crt {CA_CERT_PATH}"),
            LayerContent::Files {
                files: vec![InlineFile {
                    path: CA_CERT_PATH.into(),
                    mode: 0o644,
                    contents: cert.clone(),
                    link: None,
                }],
            },
        );
        let command = format!("update-ca-certificates && cat {CA_CERT_PATH} >> {CA_BUNDLE}");
        composer.add_layer(
            Phase::Commands,
            "ca-cert",
            format!("RUN /bin/sh -c {command}"),
            LayerContent::Run {
                command,
                env: composer.env().to_vec(),
                mounts: Vec::new(),
            },
        );
        composer.set_env("SSL_CERT_FILE", CA_BUNDLE);
        composer.set_env("REQUESTS_CA_BUNDLE", CA_BUNDLE);
        Ok(())
    }
}

/// One layer per command, in order, each seeing the environment set so far.
#[derive(Debug)]
pub struct BuildCommandsBlock;

impl Block for BuildCommandsBlock {
    fn name(&self) -> &'static str {
        "build-commands"
    }

    fn applies(&self, inputs: &PlanInputs) -> bool {
        !inputs.commands.is_empty()
    }

    fn contribute(&self, inputs: &PlanInputs, composer: &mut Composer) -> Result<(), PlanError> {
        for (index, item) in inputs.commands.iter().enumerate() {
            let mounts: Vec<SecretMount> = item
                .mounts
                .iter()
                .map(|m| SecretMount {
                    id: m.id.clone(),
                    target: m.target.clone(),
                })
                .collect();
            let flags = mounts.iter().fold(String::new(), |mut out, m| {
                let _ = write!(out, "--mount=type=secret,id={},target={} ", m.id, m.target);
                out
            });
            composer.add_layer(
                Phase::Commands,
                &format!("run-{}", index + 1),
                format!("RUN {flags}/bin/sh -c {}", item.command),
                LayerContent::Run {
                    command: item.command.clone(),
                    env: composer.env().to_vec(),
                    mounts,
                },
            );
        }
        Ok(())
    }
}
