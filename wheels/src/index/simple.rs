//! Parsing simple-API project pages: PEP 691 JSON and PEP 503 HTML (also find-links pages).

use pep508_rs::pep440_rs::VersionSpecifiers;
use serde::{Deserialize, Serialize};
use url::Url;

/// One file offered by an index or find-links location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistFile {
    pub filename: String,
    pub url: Url,
    /// Lowercase hex sha256, when the index gives one.
    pub sha256: Option<String>,
    /// Raw `requires-python` (parsed lazily; junk is ignored, as pip does).
    pub requires_python: Option<String>,
    pub yanked: bool,
    /// PEP 658/714: `Some(true)` when `<url>.metadata` is advertised, `Some(false)` when the index
    /// says it is absent, `None` when the index does not say.
    pub metadata: Option<bool>,
    pub size: Option<u64>,
}

impl DistFile {
    pub fn requires_python(&self) -> Option<VersionSpecifiers> {
        self.requires_python
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .and_then(|s| s.parse().ok())
    }
}

#[derive(Deserialize)]
struct JsonPage {
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: std::collections::HashMap<String, String>,
    #[serde(rename = "requires-python", default)]
    requires_python: Option<String>,
    #[serde(default)]
    yanked: serde_json::Value,
    #[serde(rename = "core-metadata", default)]
    core_metadata: Option<serde_json::Value>,
    #[serde(rename = "data-dist-info-metadata", default)]
    dist_info_metadata: Option<serde_json::Value>,
    #[serde(default)]
    size: Option<u64>,
}

/// Parses a PEP 691 JSON page; relative URLs are joined to `base`.
pub fn parse_json(body: &[u8], base: &Url) -> Result<Vec<DistFile>, serde_json::Error> {
    let page: JsonPage = serde_json::from_slice(body)?;
    Ok(page
        .files
        .into_iter()
        .filter_map(|f| {
            let url = base.join(&f.url).ok()?;
            let metadata = f.core_metadata.or(f.dist_info_metadata).map(|v| match v {
                serde_json::Value::Bool(b) => b,
                serde_json::Value::Null => false,
                _ => true,
            });
            Some(DistFile {
                filename: f.filename,
                url,
                sha256: f.hashes.get("sha256").map(|h| h.to_ascii_lowercase()),
                requires_python: f.requires_python,
                yanked: match f.yanked {
                    serde_json::Value::Bool(b) => b,
                    serde_json::Value::String(_) => true,
                    _ => false,
                },
                metadata,
                size: f.size,
            })
        })
        .collect())
}

/// Parses a PEP 503 HTML page (or a find-links page): every `<a href>` is a file.
pub fn parse_html(body: &str, base: &Url) -> Vec<DistFile> {
    let (Ok(anchor), Ok(attr), Ok(base_tag)) = (
        regex::Regex::new(r"(?is)<a\s([^>]*)>(.*?)</a\s*>"),
        regex::Regex::new(r#"(?s)([a-zA-Z_:-]+)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?"#),
        regex::Regex::new(r#"(?is)<base\s[^>]*href\s*=\s*["']([^"']+)["']"#),
    ) else {
        return Vec::new();
    };
    let base = base_tag
        .captures(body)
        .and_then(|c| base.join(&unescape(&c[1])).ok())
        .unwrap_or_else(|| base.clone());
    let mut files = Vec::new();
    for cap in anchor.captures_iter(body) {
        let mut href = None;
        let mut requires_python = None;
        let mut yanked = false;
        let mut metadata = None;
        for a in attr.captures_iter(&cap[1]) {
            let key = a[1].to_ascii_lowercase();
            let value = a
                .get(2)
                .or_else(|| a.get(3))
                .or_else(|| a.get(4))
                .map(|m| unescape(m.as_str()));
            match key.as_str() {
                "href" => href = value,
                "data-requires-python" => requires_python = value,
                "data-yanked" => yanked = true,
                "data-core-metadata" | "data-dist-info-metadata" => {
                    metadata = Some(value.as_deref() != Some("false"));
                }
                _ => {}
            }
        }
        let Some(href) = href else { continue };
        let Ok(mut url) = base.join(&href) else {
            continue;
        };
        let sha256 = url
            .fragment()
            .and_then(|f| f.strip_prefix("sha256="))
            .map(str::to_ascii_lowercase);
        url.set_fragment(None);
        let text = unescape(cap[2].trim());
        let filename = url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .map(crate::requirements::direct::percent_decode)
            .filter(|s| !s.is_empty())
            .unwrap_or(text);
        files.push(DistFile {
            filename,
            url,
            sha256,
            requires_python,
            yanked,
            metadata,
            size: None,
        });
    }
    files
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_html() {
        let base = Url::parse("https://example.com/simple/foo/").unwrap();
        let html = r#"<html><body>
<a href="../../files/foo-1.0-py3-none-any.whl#sha256=ABCD" data-requires-python="&gt;=3.8" data-dist-info-metadata="sha256=1">foo-1.0-py3-none-any.whl</a><br/>
<a href='https://other/foo-0.9.tar.gz' data-yanked="">foo-0.9.tar.gz</a>
<a href="foo%2B1-2.0-py3-none-any.whl">x</a>
</body></html>"#;
        let files = parse_html(html, &base);
        assert_eq!(files.len(), 3);
        assert_eq!(
            files[0].url.as_str(),
            "https://example.com/files/foo-1.0-py3-none-any.whl"
        );
        assert_eq!(files[0].sha256.as_deref(), Some("abcd"));
        assert_eq!(files[0].requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(files[0].metadata, Some(true));
        assert!(files[1].yanked && !files[0].yanked);
        assert_eq!(files[2].filename, "foo+1-2.0-py3-none-any.whl");
    }

    #[test]
    fn parses_json() {
        let base = Url::parse("https://example.com/simple/foo/").unwrap();
        let json = br#"{"meta":{"api-version":"1.1"},"name":"foo","files":[
            {"filename":"foo-1.0-py3-none-any.whl","url":"/f/foo-1.0-py3-none-any.whl","hashes":{"sha256":"aa"},"requires-python":">=3.9","yanked":"broken","core-metadata":{"sha256":"bb"}},
            {"filename":"foo-1.1.tar.gz","url":"https://x/foo-1.1.tar.gz","hashes":{},"yanked":false}]}"#;
        let files = parse_json(json, &base).unwrap();
        assert_eq!(
            files[0].url.as_str(),
            "https://example.com/f/foo-1.0-py3-none-any.whl"
        );
        assert!(files[0].yanked);
        assert_eq!(files[0].metadata, Some(true));
        assert_eq!(files[1].metadata, None);
        assert!(parse_json(b"{", &base).is_err());
    }
}
