//! `COG_CA_CERT`, read as Cog reads it (`pkg/dockerfile/cacert.go`): a file, a directory (its
//! `.crt` and `.pem` files, concatenated), inline PEM, or base64-encoded PEM.
use std::path::Path;

use base64::Engine as _;

use super::ResolveError;

pub const VAR: &str = "COG_CA_CERT";

/// The certificates `COG_CA_CERT` names; `None` when it is unset or empty.
pub fn from_env() -> Result<Option<String>, ResolveError> {
    match std::env::var(VAR) {
        Ok(value) if !value.trim().is_empty() => read(value.trim()).map(Some),
        _ => Ok(None),
    }
}

fn invalid(reason: String) -> ResolveError {
    ResolveError::CaCert { reason }
}

fn read(value: &str) -> Result<String, ResolveError> {
    let path = Path::new(value);
    if path.is_dir() {
        return read_dir(path);
    }
    if path.exists() {
        let text = fs_err::read_to_string(path)
            .map_err(|e| invalid(format!("failed to read file {value}: {e}")))?;
        return validate(&text);
    }
    if value.starts_with("-----BEGIN") {
        return validate(value);
    }
    if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value)
        && let Ok(text) = String::from_utf8(decoded)
        && text.starts_with("-----BEGIN")
    {
        return validate(&text);
    }
    Err(invalid(
        "invalid value - must be a file path, directory, PEM certificate, or base64-encoded PEM"
            .into(),
    ))
}

fn read_dir(dir: &Path) -> Result<String, ResolveError> {
    let mut entries: Vec<_> = fs_err::read_dir(dir)
        .map_err(|e| invalid(format!("failed to read directory {}: {e}", dir.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e.eq_ignore_ascii_case("crt") || e.eq_ignore_ascii_case("pem"))
        })
        .collect();
    entries.sort();
    let mut certs = String::new();
    for path in entries {
        let text = fs_err::read_to_string(&path)
            .map_err(|e| invalid(format!("failed to read file {}: {e}", path.display())))?;
        let cert = validate(&text)
            .map_err(|e| invalid(format!("invalid certificate in {}: {e}", path.display())))?;
        certs.push_str(&cert);
    }
    if certs.is_empty() {
        return Err(invalid(format!(
            "no .crt or .pem files found in directory {}",
            dir.display()
        )));
    }
    Ok(certs)
}

/// Cog's check: a PEM certificate block, trimmed, with one final newline.
fn validate(text: &str) -> Result<String, ResolveError> {
    let content = text.trim();
    if !content.starts_with("-----BEGIN CERTIFICATE-----") {
        return Err(invalid(
            "invalid PEM: must start with '-----BEGIN CERTIFICATE-----'".into(),
        ));
    }
    if !content.contains("-----END CERTIFICATE-----") {
        return Err(invalid(
            "invalid PEM: must contain '-----END CERTIFICATE-----'".into(),
        ));
    }
    Ok(format!("{content}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";

    #[test]
    fn every_form_cog_accepts() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(PEM).unwrap(), format!("{PEM}\n"));
        let b64 = base64::engine::general_purpose::STANDARD.encode(PEM);
        assert_eq!(read(&b64).unwrap(), format!("{PEM}\n"));
        std::fs::write(dir.path().join("a.crt"), PEM).unwrap();
        std::fs::write(dir.path().join("b.pem"), format!("\n{PEM}\n\n")).unwrap();
        std::fs::write(dir.path().join("c.txt"), "ignored").unwrap();
        assert_eq!(
            read(dir.path().to_str().unwrap()).unwrap(),
            format!("{PEM}\n{PEM}\n")
        );
        let file = dir.path().join("a.crt");
        assert_eq!(read(file.to_str().unwrap()).unwrap(), format!("{PEM}\n"));
    }

    #[test]
    fn bad_values_say_what_is_accepted() {
        assert!(
            read("nonsense")
                .unwrap_err()
                .to_string()
                .contains("must be a file path")
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(
            read(empty.path().to_str().unwrap())
                .unwrap_err()
                .to_string()
                .contains("no .crt or .pem files")
        );
        assert!(
            read("-----BEGIN CERTIFICATE-----\nx")
                .unwrap_err()
                .to_string()
                .contains("END CERTIFICATE")
        );
    }
}
