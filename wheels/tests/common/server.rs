//! A tiny HTTP/1.1 file server on 127.0.0.1 for local index fixtures (with Range support and
//! scripted failures), and a fixture-wheel builder.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

#[derive(Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct Routes {
    responses: HashMap<String, Response>,
    /// Path -> how many more requests fail with 503.
    failures: HashMap<String, u32>,
    log: Vec<String>,
}

#[derive(Clone)]
pub struct Server {
    pub base: String,
    routes: Arc<Mutex<Routes>>,
}

impl Server {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes = Arc::new(Mutex::new(Routes::default()));
        let r = routes.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let r = r.clone();
                std::thread::spawn(move || {
                    let _ = handle(stream, &r);
                });
            }
        });
        Self { base, routes }
    }

    pub fn index_url(&self) -> String {
        format!("{}/simple/", self.base)
    }

    pub fn put(&self, path: &str, content_type: &str, body: Vec<u8>) {
        self.routes.lock().unwrap().responses.insert(
            path.to_string(),
            Response {
                status: 200,
                content_type: content_type.to_string(),
                body,
            },
        );
    }

    pub fn fail(&self, path: &str, times: u32) {
        self.routes
            .lock()
            .unwrap()
            .failures
            .insert(path.to_string(), times);
    }

    pub fn requests(&self) -> Vec<String> {
        self.routes.lock().unwrap().log.clone()
    }

    /// Serves a wheel at `/files/<filename>` and returns its sha256.
    pub fn put_file(&self, filename: &str, bytes: Vec<u8>) -> String {
        let sha = hex::encode(Sha256::digest(&bytes));
        self.put(
            &format!("/files/{filename}"),
            "application/octet-stream",
            bytes,
        );
        sha
    }

    /// A PEP 691 JSON page for `name` listing `(filename, sha256, requires_python, yanked)`.
    pub fn put_project_json(&self, name: &str, files: &[(&str, &str, Option<&str>, bool)]) {
        let files: Vec<serde_json::Value> = files
            .iter()
            .map(|(f, sha, rp, yanked)| {
                serde_json::json!({
                    "filename": f, "url": format!("../../files/{f}"), "hashes": {"sha256": sha},
                    "requires-python": rp, "yanked": yanked,
                })
            })
            .collect();
        let body =
            serde_json::json!({"meta": {"api-version": "1.1"}, "name": name, "files": files});
        self.put(
            &format!("/simple/{name}/"),
            "application/vnd.pypi.simple.v1+json",
            body.to_string().into_bytes(),
        );
    }

    /// A PEP 503 HTML page for `name`.
    pub fn put_project_html(&self, name: &str, files: &[(&str, &str)]) {
        let mut html = String::from("<!DOCTYPE html><html><body>\n");
        for (f, sha) in files {
            let _ = writeln!(html, "<a href=\"/files/{f}#sha256={sha}\">{f}</a><br/>");
        }
        html.push_str("</body></html>\n");
        self.put(&format!("/simple/{name}/"), "text/html", html.into_bytes());
    }
}

fn handle(stream: TcpStream, routes: &Mutex<Routes>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("range")
        {
            range = Some(v.trim().to_string());
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let response = {
        let mut r = routes.lock().unwrap();
        r.log.push(path.clone());
        match r.failures.get_mut(&path) {
            Some(n) if *n > 0 => {
                *n -= 1;
                None
            }
            _ => Some(r.responses.get(&path).cloned()),
        }
    };
    let mut out = stream;
    let (status, ctype, body, extra) = match response {
        None => (
            503,
            "text/plain".to_string(),
            b"unavailable".to_vec(),
            String::new(),
        ),
        Some(None) => (
            404,
            "text/plain".to_string(),
            b"not found".to_vec(),
            String::new(),
        ),
        Some(Some(resp)) => match range.as_deref().and_then(|r| r.strip_prefix("bytes=")) {
            Some(spec) => {
                let len = resp.body.len();
                let (start, end) = if let Some(n) = spec.strip_prefix('-') {
                    let n: usize = n.parse().unwrap_or(0);
                    (len.saturating_sub(n), len - 1)
                } else {
                    let (a, b) = spec.split_once('-').unwrap_or((spec, ""));
                    let a: usize = a.parse().unwrap_or(0);
                    let b: usize = b.parse().unwrap_or(len - 1).min(len - 1);
                    (a, b)
                };
                (
                    206,
                    resp.content_type,
                    resp.body[start..=end].to_vec(),
                    format!("Content-Range: bytes {start}-{end}/{len}\r\n"),
                )
            }
            None => (resp.status, resp.content_type, resp.body, String::new()),
        },
    };
    write!(
        out,
        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    )?;
    out.write_all(&body)?;
    let _ = reader.read(&mut [0u8; 0]);
    Ok(())
}

/// Builds a wheel: `files` are `(path in zip, bytes, unix mode)`; METADATA, WHEEL and RECORD
/// are added (`requires` become Requires-Dist, `entry_points` entry_points.txt).
pub fn wheel(
    name: &str,
    version: &str,
    tag: &str,
    files: &[(&str, &[u8], u32)],
    requires: &[&str],
    entry_points: Option<&str>,
) -> (String, Vec<u8>) {
    let norm = name.replace('-', "_");
    let filename = format!("{norm}-{version}-{tag}.whl");
    let dist_info = format!("{norm}-{version}.dist-info");
    let mut metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
    for r in requires {
        let _ = writeln!(metadata, "Requires-Dist: {r}");
    }
    let mut all: Vec<(String, Vec<u8>, u32)> = files
        .iter()
        .map(|(p, b, m)| (p.to_string(), b.to_vec(), *m))
        .collect();
    all.push((
        format!("{dist_info}/METADATA"),
        metadata.into_bytes(),
        0o644,
    ));
    all.push((
        format!("{dist_info}/WHEEL"),
        format!("Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: {tag}\n").into_bytes(),
        0o644,
    ));
    if let Some(ep) = entry_points {
        all.push((
            format!("{dist_info}/entry_points.txt"),
            ep.as_bytes().to_vec(),
            0o644,
        ));
    }
    all.push((format!("{dist_info}/RECORD"), b"".to_vec(), 0o644));
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        for (path, bytes, mode) in &all {
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .unix_permissions(*mode);
            z.start_file(path.as_str(), opts).unwrap();
            z.write_all(bytes).unwrap();
        }
        z.finish().unwrap();
    }
    (filename, buf.into_inner())
}
