//! `environment:` entries: `NAME=value`, no duplicates, and no names Cog or its runtime own
//! (Cog's `EnvironmentVariableDenyList`).

use indexmap::IndexMap;

use crate::go::quote as go_quote;

/// Names reserved for the build and runtime; a trailing `*` is a prefix match.
pub const DENY_LIST: [&str; 15] = [
    "PATH",
    "LD_LIBRARY_PATH",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "PYTHONUNBUFFERED",
    "R8_*",
    "REPLICATE_*",
    "LIBRARY_PATH",
    "CUDA_*",
    "NVIDIA_*",
    "NV_*",
    "PGET_*",
    "HF_ENDPOINT",
    "HF_HUB_ENABLE_HF_TRANSFER",
    "KUBERNETES_*",
];

fn is_denied(name: &str) -> bool {
    DENY_LIST
        .iter()
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => *pattern == name,
        })
}

/// Parses `NAME=value` entries in order; the first problem is returned in Cog's words.
pub fn parse_environment(entries: &[String]) -> Result<IndexMap<String, String>, String> {
    let mut env = IndexMap::new();
    for entry in entries {
        let Some((name, value)) = entry.split_once('=').filter(|(name, _)| !name.is_empty()) else {
            return Err(format!(
                "environment variable {} is not in the KEY=VALUE format",
                go_quote(entry)
            ));
        };
        if is_denied(name) {
            return Err(format!(
                "environment variable {} is not allowed: reserved for internal use",
                go_quote(name)
            ));
        }
        if env.contains_key(name) {
            return Err(format!(
                "environment variable {} is already defined",
                go_quote(name)
            ));
        }
        env.insert(name.to_owned(), value.to_owned());
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(entries: &[&str]) -> Result<IndexMap<String, String>, String> {
        parse_environment(&entries.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_in_order_and_keeps_equals_in_values() {
        let parsed = env(&["B=1", "A=x=y", "EMPTY="]).unwrap();
        assert_eq!(
            parsed.into_iter().collect::<Vec<_>>(),
            vec![
                ("B".to_owned(), "1".to_owned()),
                ("A".to_owned(), "x=y".to_owned()),
                ("EMPTY".to_owned(), String::new())
            ]
        );
    }

    #[test]
    fn errors_match_cog() {
        assert_eq!(
            env(&["NOVALUE"]).unwrap_err(),
            "environment variable \"NOVALUE\" is not in the KEY=VALUE format"
        );
        assert_eq!(
            env(&["=x"]).unwrap_err(),
            "environment variable \"=x\" is not in the KEY=VALUE format"
        );
        assert_eq!(
            env(&["PATH=/x"]).unwrap_err(),
            "environment variable \"PATH\" is not allowed: reserved for internal use"
        );
        assert_eq!(
            env(&["CUDA_HOME=/x"]).unwrap_err(),
            "environment variable \"CUDA_HOME\" is not allowed: reserved for internal use"
        );
        assert_eq!(
            env(&["A=1", "A=2"]).unwrap_err(),
            "environment variable \"A\" is already defined"
        );
        assert!(env(&["PATHS=ok", "MY_CUDA=ok"]).is_ok());
    }
}
