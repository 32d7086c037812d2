//! A real registry (Debian's `docker-registry`, the CNCF distribution registry) on 127.0.0.1 with
//! a free port and temporary storage, stopped on drop; and a tiny busybox image to push to it.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cog::oci::{self, BuiltImage, ImageConfig, ImageRef, Platform};
use layers::{BlobStore, Compression, LayerInfo, LayerOptions, LayerWriter};

use super::{require_tool, run};

pub struct TestRegistry {
    /// `127.0.0.1:PORT`
    pub host: String,
    /// `(user, password)` when started with htpasswd.
    pub credentials: Option<(String, String)>,
    child: Child,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    pub fn start() -> Self {
        Self::start_inner(None)
    }

    /// A registry that wants HTTP basic auth (htpasswd, bcrypt).
    pub fn start_with_htpasswd(user: &str, password: &str) -> Self {
        Self::start_inner(Some((user.to_string(), password.to_string())))
    }

    fn start_inner(credentials: Option<(String, String)>) -> Self {
        require_tool("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = &credentials {
            require_tool("htpasswd", "apache2-utils");
            let line = run("htpasswd", &["-Bbn", user, password]);
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, line.trim()).unwrap();
            let path = htpasswd.display();
            writeln!(
                config,
                "auth:\n  htpasswd:\n    realm: cog-test\n    path: {path}"
            )
            .unwrap();
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("cannot start docker-registry");
        let mut registry = Self {
            host: format!("127.0.0.1:{port}"),
            credentials,
            child,
            dir,
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("docker-registry exited ({status}): {}", self.log());
            }
            if http_status(&self.host, "/v2/").is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not answer on {} within 20 s: {}",
            self.host,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `127.0.0.1:PORT/<name>`
    pub fn reference(&self, name: &str) -> String {
        format!("{}/{name}", self.host)
    }

    /// Pushes `oci:<layout>:<tag>` to `<host>/<name>` with skopeo, digests preserved
    /// (`all`: every platform of an index).
    pub fn push_layout(&self, layout: &Path, tag: &str, name: &str, all: bool) {
        let mut args = vec!["--preserve-digests"];
        if all {
            args.push("--all");
        }
        self.push_layout_with(layout, tag, name, &args);
    }

    /// Pushes `oci:<layout>:<tag>` to `<host>/<name>` with extra `skopeo copy` flags
    /// (`--format v2s2` makes Docker schema2 manifests and manifest lists).
    pub fn push_layout_with(&self, layout: &Path, tag: &str, name: &str, extra: &[&str]) {
        require_tool("skopeo", "skopeo");
        let source = format!("oci:{}:{tag}", layout.display());
        let dest = format!("docker://{}", self.reference(name));
        let mut args = vec!["copy", "--quiet", "--dest-tls-verify=false"];
        args.extend_from_slice(extra);
        let creds = self.credentials.as_ref().map(|(u, p)| format!("{u}:{p}"));
        if let Some(creds) = &creds {
            args.extend(["--dest-creds", creds.as_str()]);
        }
        args.extend([source.as_str(), dest.as_str()]);
        run("skopeo", &args);
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The status code of a plain `GET`, or `None` if nothing answers.
pub fn http_status(host: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A store in a temp dir (no fsync: tests throw it away).
pub fn temp_store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("store"))
        .unwrap()
        .with_fsync(false);
    (dir, store)
}

/// One gzip layer with `/bin/busybox` (from the busybox-static package) and the applets a test
/// needs as symlinks, so `sh -c '…'` works in a container. `marker` goes into `/etc/marker` so
/// that images can be told apart.
pub fn busybox_layer(store: &BlobStore, marker: &str) -> LayerInfo {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.is_file(),
        "these tests need /bin/busybox: install the Debian package `busybox-static`"
    );
    let mut writer = LayerWriter::new(store, &LayerOptions::new(Compression::gzip())).unwrap();
    writer.append_dir("bin", 0o755).unwrap();
    let size = busybox.metadata().unwrap().len();
    writer
        .append_file(
            "bin/busybox",
            0o755,
            size,
            &mut std::fs::File::open(busybox).unwrap(),
        )
        .unwrap();
    for applet in ["sh", "cat", "echo", "ls", "env", "true", "uname"] {
        writer
            .append_symlink(format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    writer.append_dir("etc", 0o755).unwrap();
    writer
        .append_file(
            "etc/marker",
            0o644,
            marker.len() as u64,
            &mut marker.as_bytes(),
        )
        .unwrap();
    writer.append_dir("tmp", 0o1777).unwrap();
    writer.finish().unwrap()
}

/// A busybox image for `platform` (the binary is amd64 whatever the label says: enough for pulls).
pub fn busybox_image(store: &BlobStore, platform: &Platform) -> BuiltImage {
    let layer = busybox_layer(store, &platform.to_string());
    let mut config = ImageConfig {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        ..ImageConfig::default()
    };
    let container = config.container_config_mut();
    container.env = Some(vec!["PATH=/bin".to_string()]);
    container.cmd = Some(vec!["sh".to_string()]);
    oci::assemble(store, &config, &[layer], BTreeMap::new()).unwrap()
}

/// An index of two busybox images, `linux/amd64` and `linux/arm64`.
pub fn busybox_index(store: &BlobStore) -> (ImageRef, BuiltImage, BuiltImage) {
    let amd64 = busybox_image(store, &Platform::linux_amd64());
    let arm64_platform: Platform = "linux/arm64/v8".parse().unwrap();
    let arm64 = busybox_image(store, &arm64_platform);
    let index = oci::assemble_index(
        store,
        &[
            (amd64.image_ref(), Platform::linux_amd64()),
            (arm64.image_ref(), arm64_platform),
        ],
        BTreeMap::new(),
    )
    .unwrap();
    (index, amd64, arm64)
}

/// Writes `image` as an OCI layout under `dir/name`, tagged `tag`; returns the layout path.
pub fn layout_of(store: &BlobStore, image: &ImageRef, dir: &Path, tag: &str) -> PathBuf {
    let layout = dir.join("layout");
    oci::write_layout(store, image, &layout, tag).unwrap();
    layout
}
