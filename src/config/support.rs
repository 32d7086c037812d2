//! What cog-rs does with each cog.yaml field: nothing in cog.yaml is ever ignored silently.
//! A field is either supported (it does what Cog 0.22 does), ignored as Cog ignores it (and
//! then we say so, with a warning naming it), or not supported yet (an error naming it).
//! `docs/cog-yaml.md` is this table in prose; `tests/config_fields.rs` checks that every field
//! of Cog's JSON schema is here.
use super::file::ConfigFile;

/// How cog-rs treats one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Does what Cog 0.22 does.
    Supported,
    /// Cog 0.22 reads it and does nothing with it; so do we, with a warning.
    IgnoredLikeCog(&'static str),
    /// Not done by cog-rs yet: using it is an error that says so.
    Unsupported(&'static str),
}

/// Every field of Cog's cog.yaml JSON schema (`[]` marks list items), and a few Cog drops.
pub const FIELDS: &[(&str, Support)] = &[
    ("build", Support::Supported),
    // The base follows Cog's rule (src/base/select.rs); a CUDA base without Python gets it from
    // its Debian or Ubuntu archive, else is refused when the build starts (docs/gpu.md).
    ("build.gpu", Support::Supported),
    ("build.cuda", Support::Supported),
    ("build.cudnn", Support::Supported),
    ("build.python_version", Support::Supported),
    ("build.python_requirements", Support::Supported),
    ("build.python_packages", Support::Supported),
    ("build.system_packages", Support::Supported),
    ("build.run", Support::Supported),
    ("build.run[].command", Support::Supported),
    ("build.run[].mounts", Support::Supported),
    ("build.run[].mounts[].type", Support::Supported),
    ("build.run[].mounts[].id", Support::Supported),
    ("build.run[].mounts[].target", Support::Supported),
    ("build.pre_install", Support::Supported),
    ("build.sdk_version", Support::Supported),
    ("image", Support::Supported),
    ("model", Support::Supported),
    ("run", Support::Supported),
    ("predict", Support::Supported),
    ("train", Support::Supported),
    ("concurrency", Support::Supported),
    ("concurrency.max", Support::Supported),
    (
        "concurrency.default_target",
        Support::IgnoredLikeCog("a hint for autoscalers that Cog 0.22 does not read"),
    ),
    ("environment", Support::Supported),
    ("weights", Support::Supported),
    ("weights[].name", Support::Supported),
    ("weights[].target", Support::Supported),
    ("weights[].source", Support::Supported),
    ("weights[].source.uri", Support::Supported),
    ("weights[].source.include", Support::Supported),
    ("weights[].source.exclude", Support::Supported),
    // Removed from Cog; its decoder drops them without a word.
    (
        "build.fast",
        Support::IgnoredLikeCog("removed in Cog 0.17 (fast builds were never shipped)"),
    ),
    (
        "build.cog_runtime",
        Support::IgnoredLikeCog("removed in Cog 0.17"),
    ),
    (
        "build.python_overrides",
        Support::IgnoredLikeCog("removed in Cog 0.17"),
    ),
    ("tests", Support::IgnoredLikeCog("removed in Cog 0.17")),
];

/// The status of a field path (`build.run[].mounts`).
pub fn support(field: &str) -> Option<Support> {
    FIELDS.iter().find(|(f, _)| *f == field).map(|(_, s)| *s)
}

/// What cog-rs makes of a decoded cog.yaml: errors for the fields it cannot do yet, warnings
/// for the fields it ignores (as Cog does).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// `build.run: build.run commands are not run by cog-rs yet`
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

pub fn check(file: &ConfigFile) -> Findings {
    let mut findings = Findings::default();
    for (field, line) in &file.ignored {
        // Paths of list items as the table writes them.
        let warning = match support(field) {
            Some(Support::IgnoredLikeCog(why)) => {
                format!("cog.yaml line {line}: `{field}` is ignored: {why}")
            }
            _ => format!(
                "cog.yaml line {line}: unknown field `{field}` is ignored (Cog 0.22 ignores it too; check its spelling)"
            ),
        };
        findings.warnings.push(warning);
    }
    findings
}
