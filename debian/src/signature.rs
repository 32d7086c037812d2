//! OpenPGP verification of `InRelease` files against the archive keys shipped in this crate
//! (Debian's from debian-archive-keyring, Ubuntu's from the ubuntu-keyring package).

use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};
use pgp::types::KeyDetails;

/// Which distribution's archive keys to trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Keyring {
    Debian,
    Ubuntu,
}

const DEBIAN_KEYS: &[u8] = include_bytes!("../keys/debian-archive-keyring.gpg");
const UBUNTU_KEYS: &[u8] = include_bytes!("../keys/ubuntu-archive-keyring.gpg");

impl Keyring {
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Keyring::Debian => DEBIAN_KEYS,
            Keyring::Ubuntu => UBUNTU_KEYS,
        }
    }
}

/// Parses a binary keyring (concatenated transferable public keys), as in /usr/share/keyrings.
pub fn parse_keyring(bytes: &[u8]) -> Result<Vec<SignedPublicKey>, String> {
    let keys = SignedPublicKey::from_bytes_many(bytes).map_err(|e| e.to_string())?;
    let keys: Vec<SignedPublicKey> = keys.filter_map(Result::ok).collect();
    if keys.is_empty() {
        return Err("keyring holds no public keys".into());
    }
    Ok(keys)
}

/// Verifies a clear-signed message (`InRelease`) against `keys` (primary keys and their signing
/// subkeys) and returns the signed text. At least one signature must verify.
pub fn verify_clearsigned(text: &str, keys: &[SignedPublicKey]) -> Result<String, String> {
    let (msg, _headers) = CleartextSignedMessage::from_string(text)
        .map_err(|e| format!("not a clear-signed message: {e}"))?;
    for key in keys {
        if msg.verify(key).is_ok() {
            tracing::debug!(key = %key.fingerprint(), "InRelease signature verified");
            return Ok(signed_text(&msg));
        }
        for sub in &key.public_subkeys {
            if msg.verify(sub).is_ok() {
                return Ok(signed_text(&msg));
            }
        }
    }
    let issuers: Vec<String> = msg
        .signatures()
        .iter()
        .flat_map(|s| {
            s.issuer_fingerprint()
                .into_iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    Err(format!(
        "no signature made by a trusted archive key (signed by: {})",
        if issuers.is_empty() {
            "unknown".into()
        } else {
            issuers.join(", ")
        }
    ))
}

/// Verifies a detached signature (`Release.gpg`) over `data`.
pub fn verify_detached(
    data: &[u8],
    signature: &[u8],
    keys: &[SignedPublicKey],
) -> Result<(), String> {
    use pgp::composed::DetachedSignature;
    let sigs: Vec<DetachedSignature> = match DetachedSignature::from_armor_many(signature) {
        Ok((it, _)) => it.filter_map(Result::ok).collect(),
        Err(_) => DetachedSignature::from_bytes_many(signature)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .collect(),
    };
    for sig in &sigs {
        for key in keys {
            if sig.verify(key, data).is_ok()
                || key
                    .public_subkeys
                    .iter()
                    .any(|s| sig.verify(s, data).is_ok())
            {
                return Ok(());
            }
        }
    }
    Err("no signature made by a trusted archive key".into())
}

/// The signed text with LF line endings (the verified message normalizes to CRLF).
fn signed_text(msg: &CleartextSignedMessage) -> String {
    let mut text = msg.signed_text().replace("\r\n", "\n");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_keyrings_parse() {
        assert!(parse_keyring(Keyring::Debian.bytes()).unwrap().len() >= 6);
        assert!(parse_keyring(Keyring::Ubuntu.bytes()).unwrap().len() >= 2);
    }

    #[test]
    fn rejects_unsigned_text() {
        let keys = parse_keyring(Keyring::Debian.bytes()).unwrap();
        assert!(verify_clearsigned("Origin: Debian\n", &keys).is_err());
    }
}
