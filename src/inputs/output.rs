//! Writing a prediction's output the way `cog run` does: files decoded from data URLs (or
//! downloaded from http URLs) into `-o` or `output<ext>`, arrays of files as `output.<i><ext>`,
//! strings printed, everything else as indented JSON.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use super::InputError;
use super::schema::{is_uri, output_schema, resolve};

/// Writes a prediction's output the way Cog does and returns the lines to print, in order:
///
/// - `Output` is a file (`format: uri`): the data URL (or http(s) URL) is decoded and written to
///   `out`, else to `output` plus the extension of its mime type; the line is
///   `Written output to <path>`.
/// - an array of files: each to `output.<i><ext>` (`<out>.<i><ext>` with `-o`), one line each.
/// - a string, or a concatenate iterator (`x-cog-array-display: concatenate`, joined): the text,
///   or written to `out`.
/// - anything else: indented JSON, or written to `out`.
///
/// A `null` output returns no lines (Cog warns `No output generated`). Relative paths are
/// resolved against `cwd`.
pub fn write_output(
    schema: &Value,
    output: &Value,
    out: Option<&Path>,
    cwd: &Path,
) -> Result<Vec<String>, InputError> {
    if output.is_null() {
        return Ok(Vec::new());
    }
    let out = out.map(|path| {
        let path = path.strip_prefix("@").unwrap_or(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            cwd.join(path)
        }
    });
    let output_schema = output_schema(schema).map(|s| resolve(schema, s));
    let file_output = match output_schema {
        Some(s) => is_uri(schema, s),
        // No schema (an image without one): a data URL on its own is a file.
        None => output.as_str().is_some_and(|s| s.starts_with("data:")),
    };
    let items = output_schema.and_then(|s| s.get("items"));
    let array_of_files = output_schema.is_some_and(|s| {
        s.get("type").and_then(Value::as_str) == Some("array")
            && items.is_some_and(|items| is_uri(schema, items))
    });
    let concatenate = output_schema.is_some_and(|s| {
        s.get("x-cog-array-display").and_then(Value::as_str) == Some("concatenate")
    });

    if file_output {
        let url = output.as_str().ok_or(InputError::OutputType {
            expected: "string",
            got: super::schema::json_type_name(output),
        })?;
        let (bytes, ext) = fetch(url)?;
        let path = out.unwrap_or_else(|| cwd.join(format!("output{ext}")));
        write(&path, &bytes)?;
        return Ok(vec![written(&path)]);
    }
    if array_of_files {
        let list = output.as_array().ok_or(InputError::OutputType {
            expected: "array",
            got: super::schema::json_type_name(output),
        })?;
        let mut lines = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let url = item.as_str().ok_or(InputError::OutputType {
                expected: "string",
                got: super::schema::json_type_name(item),
            })?;
            let (bytes, ext) = fetch(url)?;
            let path = match &out {
                Some(out) => PathBuf::from(format!("{}.{i}{ext}", out.display())),
                None => cwd.join(format!("output.{i}{ext}")),
            };
            write(&path, &bytes)?;
            lines.push(written(&path));
        }
        return Ok(lines);
    }
    let text = match output {
        Value::String(s) => s.clone(),
        Value::Array(items) if concatenate && items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).collect()
        }
        other => serde_json::to_string_pretty(other).unwrap_or_else(|_| other.to_string()),
    };
    match out {
        Some(path) => {
            write(&path, text.as_bytes())?;
            Ok(vec![written(&path)])
        }
        None => Ok(vec![text]),
    }
}

fn written(path: &Path) -> String {
    format!("Written output to {}", path.display())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), InputError> {
    fs_err::write(path, bytes).map_err(|source| InputError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The bytes of a file output and the extension (with its dot, or empty) for its mime type.
fn fetch(url: &str) -> Result<(Vec<u8>, String), InputError> {
    if url.starts_with("data:") {
        let (mime, bytes) = decode_data_url(url)?;
        return Ok((bytes, extension_for(&mime)));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return download(url);
    }
    Err(InputError::DataUrl(format!(
        "expected a data: or http(s) URL, got {:?}",
        url.chars().take(64).collect::<String>()
    )))
}

/// `data:[<mime>][;param]*[;base64],<data>` into its mime type and bytes.
pub(super) fn decode_data_url(url: &str) -> Result<(String, Vec<u8>), InputError> {
    let rest = url
        .strip_prefix("data:")
        .ok_or_else(|| InputError::DataUrl("missing data: prefix".to_string()))?;
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| InputError::DataUrl("missing ',' before the data".to_string()))?;
    let mut params = meta.split(';');
    let mime = params.next().unwrap_or_default().trim().to_string();
    let base64 = params.any(|p| p.trim() == "base64");
    let bytes = if base64 {
        base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| InputError::DataUrl(e.to_string()))?
    } else {
        percent_decode(data)
    };
    let mime = if mime.is_empty() {
        "text/plain".to_string()
    } else {
        mime
    };
    Ok((mime, bytes))
}

fn percent_decode(data: &str) -> Vec<u8> {
    let bytes = data.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The extension Cog's `mime.ExtensionByType` gives: the common one for well-known types, else
/// the first that `mime_guess` knows, else none.
fn extension_for(mime: &str) -> String {
    let essence = mime.split(';').next().unwrap_or_default().trim();
    let preferred = match essence {
        "image/jpeg" => Some("jpg"),
        "image/png" => Some("png"),
        "image/webp" => Some("webp"),
        "image/gif" => Some("gif"),
        "image/svg+xml" => Some("svg"),
        "audio/mpeg" => Some("mp3"),
        "audio/wav" | "audio/x-wav" | "audio/wave" => Some("wav"),
        "video/mp4" => Some("mp4"),
        "text/plain" => Some("txt"),
        "application/json" => Some("json"),
        "application/octet-stream" => None,
        _ => mime_guess::get_mime_extensions_str(essence).and_then(|exts| exts.first().copied()),
    };
    preferred.map(|ext| format!(".{ext}")).unwrap_or_default()
}

fn download(url: &str) -> Result<(Vec<u8>, String), InputError> {
    let err = |message: String| InputError::Download {
        url: url.to_string(),
        message,
    };
    let response = reqwest::blocking::get(url)
        .and_then(reqwest::blocking::Response::error_for_status)
        .map_err(|e| err(e.to_string()))?;
    let from_path = Path::new(response.url().path())
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()));
    let from_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(extension_for)
        .filter(|e| !e.is_empty());
    let ext = from_path.or(from_type).unwrap_or_default();
    let bytes = response.bytes().map_err(|e| err(e.to_string()))?;
    Ok((bytes.to_vec(), ext))
}
