//! The few calls to the Docker Engine API we make ourselves, over its unix socket, with no
//! client process: inspect an image, load an image (the body streamed as we write it), tag.
//! Plain HTTP/1.1, one request per connection.
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Writes a request body onto the connection.
type BodyWriter<'a> = &'a mut dyn FnMut(&mut dyn Write) -> io::Result<()>;

/// The daemon's socket: `$DOCKER_HOST` when it names a unix socket, else the default one.
/// `None` when `$DOCKER_HOST` points elsewhere (TCP, SSH): then only the `docker` client can
/// reach the daemon.
pub fn socket_path() -> Option<PathBuf> {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => host.strip_prefix("unix://").map(PathBuf::from),
        _ => Some(PathBuf::from("/var/run/docker.sock")),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot reach the Docker daemon at {}", .socket.display())]
    Connect {
        socket: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{method} {path} on the Docker daemon")]
    Io {
        method: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{method} {path}: the Docker daemon answered {status}: {message}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        message: String,
    },
    #[error("the Docker daemon could not load the image: {0}")]
    Load(String),
}

/// A client for one daemon socket.
#[derive(Debug, Clone)]
pub struct DockerApi {
    socket: PathBuf,
}

/// What [`DockerApi::container`] tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    pub running: bool,
    /// (`"5000/tcp"`, host port) for each published binding.
    pub ports: Vec<(String, u16)>,
}

/// An answer: status and body (de-chunked).
struct Response {
    status: u16,
    body: Vec<u8>,
}

impl DockerApi {
    /// The daemon at `socket`, when something listens there.
    pub fn connect(socket: &Path) -> Result<Self, ApiError> {
        let api = Self {
            socket: socket.to_path_buf(),
        };
        api.request("GET", "/_ping", None)?;
        Ok(api)
    }

    /// The image id (`sha256:…`) of `name` (a name, id or digest); `None` when the daemon has
    /// no such image.
    pub fn image_id(&self, name: &str) -> Result<Option<String>, ApiError> {
        let path = format!("/images/{}/json", escape(name));
        Ok(self
            .get_json(&path)?
            .and_then(|value| value["Id"].as_str().map(str::to_string)))
    }

    /// The layers (diff ids, base first) of the image `name`, when the daemon has it.
    pub fn image_layers(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        let path = format!("/images/{}/json", escape(name));
        Ok(self.get_json(&path)?.map(|value| {
            value["RootFS"]["Layers"]
                .as_array()
                .map(|layers| {
                    layers
                        .iter()
                        .filter_map(|l| l.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        }))
    }

    /// `GET path` as JSON; `None` on 404.
    fn get_json(&self, path: &str) -> Result<Option<serde_json::Value>, ApiError> {
        let response = self.request("GET", path, None)?;
        match response.status {
            200 => serde_json::from_slice(&response.body)
                .map(Some)
                .map_err(|e| ApiError::Io {
                    method: "GET",
                    path: path.to_string(),
                    source: io::Error::other(e),
                }),
            404 => Ok(None),
            status => Err(status_error(
                "GET",
                path.to_string(),
                status,
                &response.body,
            )),
        }
    }

    /// A container's state: whether it runs, and the host ports of its published ports
    /// (`"5000/tcp"` -> host port); `None` when there is no such container.
    pub fn container(&self, id: &str) -> Result<Option<ContainerState>, ApiError> {
        let path = format!("/containers/{}/json", escape(id));
        let Some(value) = self.get_json(&path)? else {
            return Ok(None);
        };
        let mut ports = Vec::new();
        if let Some(map) = value["NetworkSettings"]["Ports"].as_object() {
            for (port, bindings) in map {
                for binding in bindings.as_array().into_iter().flatten() {
                    if let Some(host) = binding["HostPort"]
                        .as_str()
                        .and_then(|p| p.parse::<u16>().ok())
                    {
                        ports.push((port.clone(), host));
                    }
                }
            }
        }
        Ok(Some(ContainerState {
            running: value["State"]["Running"].as_bool().unwrap_or(false),
            ports,
        }))
    }

    /// `POST /containers/create?name=NAME` with Docker's create body; the new container's id.
    pub fn create_container(
        &self,
        name: &str,
        body: &serde_json::Value,
    ) -> Result<String, ApiError> {
        let path = format!("/containers/create?name={}", escape(name));
        let bytes = serde_json::to_vec(body).map_err(|e| ApiError::Io {
            method: "POST",
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        let response = self.request_json("POST", &path, &bytes)?;
        match response.status {
            200 | 201 => {
                let value: serde_json::Value =
                    serde_json::from_slice(&response.body).unwrap_or_default();
                Ok(value["Id"].as_str().unwrap_or(name).to_string())
            }
            status => Err(status_error("POST", path, status, &response.body)),
        }
    }

    /// `POST /containers/ID/start`.
    pub fn start_container(&self, id: &str) -> Result<(), ApiError> {
        let path = format!("/containers/{}/start", escape(id));
        let response = self.request("POST", &path, None)?;
        match response.status {
            204 | 304 => Ok(()),
            status => Err(status_error("POST", path, status, &response.body)),
        }
    }

    /// Removes a container, killing it first when it runs (`docker rm --force`).
    pub fn remove_container(&self, id: &str) -> Result<(), ApiError> {
        let path = format!("/containers/{}?force=1&v=1", escape(id));
        let response = self.request("DELETE", &path, None)?;
        match response.status {
            200 | 204 | 404 => Ok(()),
            status => Err(status_error("DELETE", path, status, &response.body)),
        }
    }

    /// Tags image `id` as `name` (`repo[:tag]`, `latest` when no tag).
    pub fn tag(&self, id: &str, name: &str) -> Result<(), ApiError> {
        let (repo, tag) = split_tag(name);
        let path = format!(
            "/images/{}/tag?repo={}&tag={}",
            escape(id),
            escape(repo),
            escape(tag)
        );
        let response = self.request("POST", &path, None)?;
        match response.status {
            200 | 201 => Ok(()),
            status => Err(status_error("POST", path, status, &response.body)),
        }
    }

    /// `POST /images/load`: `write` writes the image tarball into the request body, which goes
    /// to the daemon as it is written (chunked), never to a file. Returns the daemon's lines
    /// (`Loaded image: …`).
    pub fn load(
        &self,
        write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    ) -> Result<Vec<String>, ApiError> {
        let path = "/images/load?quiet=1";
        let response = self.request("POST", path, Some(write))?;
        if response.status != 200 {
            return Err(status_error(
                "POST",
                path.into(),
                response.status,
                &response.body,
            ));
        }
        // A JSON stream: {"stream": "Loaded image: x\n"} or {"error": "…"}.
        let mut lines = Vec::new();
        for line in response.body.split(|b| *b == b'\n') {
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            if let Some(error) = value["error"].as_str() {
                return Err(ApiError::Load(error.trim().to_string()));
            }
            if let Some(stream) = value["stream"].as_str() {
                lines.extend(stream.lines().map(str::to_string).filter(|l| !l.is_empty()));
            }
        }
        Ok(lines)
    }

    /// A request with a small JSON body.
    fn request_json(
        &self,
        method: &'static str,
        path: &str,
        body: &[u8],
    ) -> Result<Response, ApiError> {
        let io_err = |source| ApiError::Io {
            method,
            path: path.to_string(),
            source,
        };
        let stream = UnixStream::connect(&self.socket).map_err(|source| ApiError::Connect {
            socket: self.socket.clone(),
            source,
        })?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(io_err)?;
        let mut out = BufWriter::new(&stream);
        write!(
            out,
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .and_then(|()| out.write_all(body))
        .and_then(|()| out.flush())
        .map_err(io_err)?;
        drop(out);
        read_response(&stream).map_err(io_err)
    }

    fn request(
        &self,
        method: &'static str,
        path: &str,
        body: Option<BodyWriter<'_>>,
    ) -> Result<Response, ApiError> {
        let stream = UnixStream::connect(&self.socket).map_err(|source| ApiError::Connect {
            socket: self.socket.clone(),
            source,
        })?;
        let io_err = |source| ApiError::Io {
            method,
            path: path.to_string(),
            source,
        };
        // A daemon that accepts and never answers must not hang us; loads take their time.
        let timeout = if body.is_some() { 3600 } else { 60 };
        stream
            .set_read_timeout(Some(Duration::from_secs(timeout)))
            .map_err(io_err)?;
        let sent = (|| -> io::Result<()> {
            let mut out = BufWriter::with_capacity(1 << 20, &stream);
            write!(
                out,
                "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n"
            )?;
            match body {
                Some(write_body) => {
                    out.write_all(
                        b"Content-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n",
                    )?;
                    let mut chunked = Chunked(BufWriter::with_capacity(1 << 20, &mut out));
                    write_body(&mut chunked)?;
                    let inner = chunked
                        .0
                        .into_inner()
                        .map_err(io::IntoInnerError::into_error)?;
                    inner.write_all(b"0\r\n\r\n")?;
                }
                None => out.write_all(b"Content-Length: 0\r\n\r\n")?,
            }
            out.flush()
        })();
        // When the daemon stops reading early (a bad image), its answer says why: read it
        // before reporting the broken pipe.
        match read_response(&stream) {
            Ok(response) => {
                if let Err(source) = sent
                    && response.status == 200
                {
                    return Err(io_err(source));
                }
                Ok(response)
            }
            Err(read_error) => Err(io_err(sent.err().unwrap_or(read_error))),
        }
    }
}

/// Writes each buffer it gets as one HTTP chunk.
struct Chunked<W: Write>(W);

impl<W: Write> Write for Chunked<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        write!(self.0, "{:x}\r\n", buf.len())?;
        self.0.write_all(buf)?;
        self.0.write_all(b"\r\n")?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

fn read_response(stream: &UnixStream) -> io::Result<Response> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not an HTTP status line: {:?}", line.trim()),
            )
        })?;
    let (mut chunked, mut length) = (false, None);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once(':') {
            let value = value.trim();
            if key.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked") {
                chunked = true;
            } else if key.eq_ignore_ascii_case("content-length") {
                length = value.parse::<u64>().ok();
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad chunk size {:?}", line.trim()),
                    )
                })?;
            if size == 0 {
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            line.clear();
            reader.read_line(&mut line)?;
        }
    } else if let Some(length) = length {
        reader.take(length).read_to_end(&mut body)?;
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok(Response { status, body })
}

fn status_error(method: &'static str, path: String, status: u16, body: &[u8]) -> ApiError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    ApiError::Status {
        method,
        path,
        status,
        message,
    }
}

/// `repo:tag` -> (`repo`, `tag`); `latest` when there is no tag (a registry port is no tag).
fn split_tag(name: &str) -> (&str, &str) {
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (name, "latest"),
    }
}

/// Percent-encodes what may not appear bare in a path segment or query value.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:@".contains(&byte) || byte == b'/' {
            out.push(byte as char);
        } else {
            use std::fmt::Write as _;
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::net::UnixListener;

    use super::*;

    #[test]
    fn names_split_into_repository_and_tag() {
        assert_eq!(split_tag("model:v1"), ("model", "v1"));
        assert_eq!(split_tag("model"), ("model", "latest"));
        assert_eq!(
            split_tag("localhost:5000/me/model"),
            ("localhost:5000/me/model", "latest")
        );
        assert_eq!(
            split_tag("localhost:5000/me/model:v2"),
            ("localhost:5000/me/model", "v2")
        );
        assert_eq!(escape("a b&c/d:e"), "a%20b%26c/d:e");
    }

    fn answer(status: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// A fake daemon that records the request and answers `answer`.
    fn serve_once(answer: String) -> (tempfile::TempDir, std::thread::JoinHandle<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("docker.sock")).unwrap();
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut request = Vec::new();
            // Headers, then a chunked body up to its last chunk.
            loop {
                let mut line = Vec::new();
                if reader.read_until(b'\n', &mut line).unwrap() == 0 {
                    break;
                }
                request.extend_from_slice(&line);
                if request.ends_with(b"\r\n\r\n")
                    && (!request.windows(7).any(|w| w == b"chunked")
                        || request.ends_with(b"0\r\n\r\n"))
                {
                    break;
                }
            }
            conn.write_all(answer.as_bytes()).unwrap();
            request
        });
        (dir, handle)
    }

    #[test]
    fn a_load_streams_the_body_in_chunks_and_reads_the_loaded_name() {
        let line = "{\"stream\":\"Loaded image: m:1\\n\"}\n";
        let (dir, server) = serve_once(format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{line}\r\n0\r\n\r\n",
            line.len()
        ));
        let api = DockerApi {
            socket: dir.path().join("docker.sock"),
        };
        let lines = api.load(&mut |out| out.write_all(b"tar bytes")).unwrap();
        assert_eq!(lines, ["Loaded image: m:1"]);
        let request = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(
            request.starts_with("POST /images/load?quiet=1 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains("Transfer-Encoding: chunked\r\n"),
            "{request}"
        );
        assert!(
            request.ends_with("\r\n\r\n9\r\ntar bytes\r\n0\r\n\r\n"),
            "{request}"
        );
    }

    #[test]
    fn a_load_error_in_the_stream_is_an_error() {
        let (dir, server) = serve_once(answer(
            "200 OK",
            "{\"errorDetail\":{\"message\":\"x\"},\"error\":\"bad\"}\n",
        ));
        let api = DockerApi {
            socket: dir.path().join("docker.sock"),
        };
        let err = api.load(&mut |out| out.write_all(b"t")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the Docker daemon could not load the image: bad"
        );
        server.join().unwrap();
    }

    #[test]
    fn a_missing_image_is_none_and_other_statuses_are_errors() {
        let (dir, server) = serve_once(answer(
            "404 Not Found",
            "{\"message\":\"No such image: x\"}",
        ));
        let api = DockerApi {
            socket: dir.path().join("docker.sock"),
        };
        assert_eq!(api.image_id("x").unwrap(), None);
        let request = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(
            request.starts_with("GET /images/x/json HTTP/1.1\r\n"),
            "{request}"
        );

        let (dir, server) = serve_once(answer(
            "500 Internal Server Error",
            "{\"message\":\"boom\"}",
        ));
        let api = DockerApi {
            socket: dir.path().join("docker.sock"),
        };
        let err = api.image_id("x").unwrap_err().to_string();
        assert_eq!(
            err,
            "GET /images/x/json: the Docker daemon answered 500: boom"
        );
        server.join().unwrap();
    }
}
