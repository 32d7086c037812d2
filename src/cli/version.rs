//! `cog --version`: this CLI's version, the Cog version it is compatible with, and the runtime
//! wheels built into it (a release build) or where a development build finds them.
use std::sync::LazyLock;

use crate::resolve::runtime_wheels::embedded;

/// `cog -V`: `cog version X (cog-rs, compatible with Cog Y)`, the first line of Cog's form.
pub static SHORT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "version {} (cog-rs, compatible with Cog {})",
        crate::VERSION,
        crate::schema::COG_VERSION
    )
});

/// `cog --version`: the short line, then the wheels images get.
pub static LONG: LazyLock<String> = LazyLock::new(|| long(embedded::EMBEDDED_SUMMARY));

fn long(summary: &str) -> String {
    if summary.is_empty() {
        format!(
            "{}\nembedded wheels: none (a development build: images get the wheels of {}, or COG_SDK_WHEEL/COGLET_WHEEL)",
            *SHORT,
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("dist")
                .display()
        )
    } else {
        format!("{}\nembedded wheels:\n{}", *SHORT, summary.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_embedded_wheels() {
        let summary = "  cog 0.1.0 (py3-none-any, sha256 0123456789ab)\n  coglet 0.1.0 (cp310-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64, sha256 ba9876543210)\n";
        assert_eq!(
            long(summary),
            format!(
                "version {} (cog-rs, compatible with Cog {})\nembedded wheels:\n{}",
                crate::VERSION,
                crate::schema::COG_VERSION,
                summary.trim_end()
            )
        );
        assert!(long("").contains("embedded wheels: none (a development build"));
    }
}
