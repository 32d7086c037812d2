//! Server log setup (reference 3.6): JSON lines on stderr by default, `LOG_FORMAT=console` for
//! plain text; level from `COG_LOG_LEVEL` (debug/info/warn/error), or `RUST_LOG` when set.

use tracing_subscriber::EnvFilter;

/// The filter directive the environment asks for.
pub fn filter_directive(rust_log: Option<&str>, cog_level: Option<&str>) -> String {
    if let Some(directive) = rust_log.filter(|s| !s.trim().is_empty()) {
        return directive.to_string();
    }
    let level = match cog_level.map(str::to_ascii_lowercase).as_deref() {
        Some("debug") => "debug",
        Some("warn" | "warning") => "warn",
        Some("error") => "error",
        Some("trace") => "trace",
        _ => "info",
    };
    level.to_string()
}

/// Installs the global subscriber once; later calls (or another subscriber) are left alone.
pub fn init_logging() {
    let directive = filter_directive(
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var("COG_LOG_LEVEL").ok().as_deref(),
    );
    let filter = EnvFilter::try_new(&directive).unwrap_or_else(|_| EnvFilter::new("info"));
    let console = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("console"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if console {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_wins_then_cog_level() {
        assert_eq!(
            filter_directive(Some("coglet=trace"), Some("error")),
            "coglet=trace"
        );
        assert_eq!(filter_directive(None, Some("WARNING")), "warn");
        assert_eq!(filter_directive(Some(" "), None), "info");
    }
}
