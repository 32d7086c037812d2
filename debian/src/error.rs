use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{origin}: {reason}")]
    Index { origin: String, reason: String },
    #[error("cannot fetch {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("OpenPGP signature check failed for {url}: {reason}")]
    Signature { url: String, reason: String },
    #[error("hash mismatch for {what}: expected sha256 {expected}, got {actual}")]
    HashMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{release} does not list {path} (components or architecture not in this suite?)")]
    NotInRelease { release: String, path: String },
    #[error("unable to locate package {name}{}", did_you_mean(.suggestions))]
    UnknownPackage {
        name: String,
        suggestions: Vec<String>,
    },
    #[error("unsatisfiable dependencies:\n{0}")]
    Unsatisfiable(String),
    #[error("invalid .deb {name}: {reason}")]
    Deb { name: String, reason: String },
    #[error("invalid lock file {path}: {reason}")]
    Lock { path: PathBuf, reason: String },
    #[error("{origin} gives a name that cannot be stored safely")]
    UnsafeName {
        origin: String,
        #[source]
        source: safe_path::UnsafeName,
    },
    #[error("{0}")]
    Config(String),
    #[error(
        "{file} is larger than {}, the limit on {what} (set {variable} to raise it)",
        crate::limits::human(*.limit)
    )]
    TooLarge {
        file: String,
        limit: u64,
        what: &'static str,
        variable: &'static str,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Layers(#[from] layers::Error),
}

fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(" (did you mean: {}?)", suggestions.join(", "))
    }
}
