//! No daemon: the image's layers unpacked once into a root filesystem in the cache, an overlay
//! (or, where overlay mounts are refused, a copy) on top of it per container, an OCI runtime
//! `config.json` beside it, and `runc run`.
//!
//! The container shares the host's network (there is no daemon to set up a bridge), so a
//! published port is a host port the server must bind on 127.0.0.1 itself; everything else is
//! isolated (pid, ipc, uts and mount namespaces; a user namespace when not root).
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use layers::BlobStore;
use serde_json::{Value, json};

use super::unpack::{UnpackBudget, apply_layer, is_root};
use super::{RunSpec, RuntimeError, SHM_SIZE, container_name, io_error};
use crate::oci::SourceImage;
use crate::sandbox::limits::UnpackLimits;
use crate::sandbox::{CAPABILITIES, nofile_limit};

#[derive(Debug)]
pub(super) struct RuncContainer {
    pub id: String,
    pub host_port: Option<u16>,
    dir: PathBuf,
    child: Option<Child>,
    removed: bool,
}

/// Bundle directories of the containers this process started, for [`remove_by_id`].
static BUNDLES: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());

fn runtime_dir(store: &BlobStore) -> PathBuf {
    store.root().join("runtime")
}

/// The image's root filesystem, unpacked once per image (by config digest) under
/// `<cache>/runtime/rootfs/`.
pub(super) fn ensure_unpacked(
    store: &BlobStore,
    image: &SourceImage,
) -> Result<PathBuf, RuntimeError> {
    let parent = runtime_dir(store).join("rootfs");
    let rootfs = parent.join(image.config_digest.hex());
    if rootfs.is_dir() {
        return Ok(rootfs);
    }
    fs_err::create_dir_all(&parent).map_err(io_error(&parent))?;
    let partial = parent.join(format!(
        "{}.partial-{}",
        image.config_digest.hex(),
        std::process::id()
    ));
    if partial.exists() {
        fs_err::remove_dir_all(&partial).map_err(io_error(&partial))?;
    }
    fs_err::create_dir(&partial).map_err(io_error(&partial))?;
    let result = (|| {
        let limits = UnpackLimits::from_env().map_err(RuntimeError::Other)?;
        let mut budget = UnpackBudget::new(limits);
        for layer in &image.layers {
            let blob = store
                .open_blob(&layer.digest)
                .map_err(|e| RuntimeError::Unpack {
                    layer: layer.digest.to_string(),
                    source: io::Error::other(e.to_string()),
                })?;
            apply_layer(blob, &partial, &layer.digest.to_string(), &mut budget)?;
        }
        Ok(())
    })();
    if let Err(err) = result {
        let _ = fs_err::remove_dir_all(&partial);
        return Err(err);
    }
    if let Err(e) = fs_err::rename(&partial, &rootfs) {
        // Another process finished the same image first; use theirs.
        let _ = fs_err::remove_dir_all(&partial);
        if !rootfs.is_dir() {
            return Err(io_error(&rootfs)(e));
        }
    }
    Ok(rootfs)
}

/// Starts a container: in the background with its output in `<bundle>/container.log`, or
/// `attached` to this process's stdio.
pub(super) fn start(
    store: &BlobStore,
    image: &SourceImage,
    spec: &RunSpec,
    attached: bool,
) -> Result<RuncContainer, RuntimeError> {
    let lower = ensure_unpacked(store, image)?;
    sweep_stale_bundles(&runtime_dir(store).join("containers"));
    let id = container_name();
    let dir = runtime_dir(store).join("containers").join(&id);
    for sub in ["upper", "work", "rootfs"] {
        let path = dir.join(sub);
        fs_err::create_dir_all(&path).map_err(io_error(&path))?;
    }
    if let Ok(mut bundles) = BUNDLES.lock() {
        bundles.insert(id.clone(), dir.clone());
    }
    let mut container = RuncContainer {
        id: id.clone(),
        host_port: None,
        dir: dir.clone(),
        child: None,
        removed: false,
    };
    mount_rootfs(&lower, &dir)?;

    let host_port = match spec.publish {
        Some(_) => Some(match spec.host_port {
            Some(port) => port,
            None => free_port().map_err(io_error(Path::new("127.0.0.1:0")))?,
        }),
        None => None,
    };
    container.host_port = host_port;
    let hosts = dir.join("hosts");
    write_hosts(&hosts, &spec.add_hosts)?;
    let config = bundle_config(image, spec, host_port, &dir, &hosts, is_root());
    let config_path = dir.join("config.json");
    let text = serde_json::to_vec_pretty(&config)
        .map_err(|e| RuntimeError::Other(format!("config.json: {e}")))?;
    fs_err::write(&config_path, text).map_err(io_error(&config_path))?;

    let mut command = Command::new("runc");
    command.arg("run").arg("--bundle").arg(&dir).arg(&id);
    if attached {
        command.stdin(Stdio::inherit());
    } else {
        let log_path = dir.join("container.log");
        let log = File::create(&log_path).map_err(io_error(&log_path))?;
        let log2 = log.try_clone().map_err(io_error(&log_path))?;
        command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Ctrl-C in the terminal is ours to handle (we remove the container), not runc's.
            .process_group(0);
    }
    let child = command.spawn().map_err(|source| RuntimeError::Spawn {
        program: "runc".into(),
        source,
    })?;
    container.child = Some(child);
    Ok(container)
}

/// The container's root: an overlay of the unpacked image (fast, nothing copied), else a copy.
fn mount_rootfs(lower: &Path, dir: &Path) -> Result<(), RuntimeError> {
    let merged = dir.join("rootfs");
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        dir.join("upper").display(),
        dir.join("work").display()
    );
    let mounted = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(&merged)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if mounted {
        return Ok(());
    }
    tracing::debug!("overlay mount refused; copying the root filesystem");
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", lower.display()))
        .arg(&merged)
        .status()
        .map_err(|source| RuntimeError::Spawn {
            program: "cp".into(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(RuntimeError::Other(format!(
            "copying {} to {} failed ({status})",
            lower.display(),
            merged.display()
        )))
    }
}

/// A port nobody listens on at 127.0.0.1 right now.
fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The host's `/etc/hosts`, plus `name:host-gateway` entries as 127.0.0.1 (the container
/// shares the host's network, so the host is loopback).
fn write_hosts(path: &Path, add_hosts: &[String]) -> Result<(), RuntimeError> {
    let mut text = fs_err::read_to_string("/etc/hosts")
        .unwrap_or_else(|_| "127.0.0.1\tlocalhost\n::1\tlocalhost\n".to_string());
    if !text.ends_with('\n') {
        text.push('\n');
    }
    for entry in add_hosts {
        if let Some((name, address)) = entry.split_once(':') {
            let address = if address == "host-gateway" {
                "127.0.0.1"
            } else {
                address
            };
            let _ = writeln!(text, "{address}\t{name}");
        }
    }
    fs_err::write(path, text).map_err(io_error(path))
}

/// Resolves the image's `User` (`uid[:gid]` or a name in the image's `/etc/passwd`).
fn user_ids(user: Option<&str>, rootfs: &Path) -> (u32, u32) {
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        return (0, 0);
    };
    let (name, group) = user.split_once(':').unwrap_or((user, ""));
    let passwd = fs_err::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let entry = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 3 && (fields[0] == name || fields[2] == name))
            .then(|| (fields[2].parse().ok(), fields[3].parse().ok()))
    });
    let uid = name
        .parse()
        .ok()
        .or_else(|| entry.and_then(|e| e.0))
        .unwrap_or(0);
    let gid = group
        .parse()
        .ok()
        .or_else(|| entry.and_then(|e| e.1))
        .unwrap_or(uid);
    (uid, gid)
}

/// The OCI runtime `config.json` (runtime-spec 1.0) for running `image` as `spec` asks.
fn bundle_config(
    image: &SourceImage,
    spec: &RunSpec,
    host_port: Option<u16>,
    dir: &Path,
    hosts: &Path,
    root: bool,
) -> Value {
    let container = image.config.config.clone().unwrap_or_default();
    let mut args = container.entrypoint.clone().unwrap_or_default();
    if spec.args.is_empty() {
        args.extend(container.cmd.clone().unwrap_or_default());
    } else {
        args.extend(spec.args.iter().cloned());
    }
    let mut env: Vec<(String, String)> = container
        .env
        .clone()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| {
            e.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let mut set = |key: &str, value: &str| match env.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value.to_string(),
        None => env.push((key.to_string(), value.to_string())),
    };
    if !container
        .env
        .iter()
        .flatten()
        .any(|e| e.starts_with("PATH="))
    {
        set(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        );
    }
    set("HOSTNAME", "cog");
    if let Some(port) = host_port {
        set("PORT", &port.to_string());
    }
    for (key, value) in &spec.env {
        set(key, value);
    }
    let env: Vec<String> = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let cwd = spec
        .workdir
        .clone()
        .or(container.working_dir.clone())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/".to_string());
    let (uid, gid) = user_ids(container.user.as_deref(), &dir.join("rootfs"));
    let nofile = nofile_limit();

    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
        "options": if root {
            json!(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"])
        } else {
            json!(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"])
        }}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={SHM_SIZE}")]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        // The host's network namespace is shared, so sysfs cannot be mounted afresh.
        json!({"destination": "/sys", "type": "none", "source": "/sys",
               "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/etc/hosts", "type": "none", "source": hosts,
               "options": ["bind", "ro"]}),
    ];
    if Path::new("/etc/resolv.conf").exists() {
        mounts.push(json!({"destination": "/etc/resolv.conf", "type": "none",
                           "source": "/etc/resolv.conf", "options": ["bind", "ro"]}));
    }
    for mount in &spec.mounts {
        let mode = if mount.read_only { "ro" } else { "rw" };
        mounts.push(json!({"destination": mount.target, "type": "none",
                           "source": mount.source, "options": ["rbind", mode]}));
    }

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    let mut linux = json!({
        "namespaces": [],
        "maskedPaths": [
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
            "/proc/scsi"
        ],
        "readonlyPaths": [
            "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
        ]
    });
    if !root {
        namespaces.push(json!({"type": "user"}));
        let (host_uid, host_gid) = own_ids();
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": host_uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": host_gid, "size": 1}]);
    }
    linux["namespaces"] = Value::Array(namespaces);

    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": uid, "gid": gid},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {
                "bounding": CAPABILITIES,
                "effective": CAPABILITIES,
                "permitted": CAPABILITIES
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "cog",
        "mounts": mounts,
        "linux": linux
    })
}

/// This process's uid and gid (for a rootless user namespace).
fn own_ids() -> (u32, u32) {
    let status = fs_err::read_to_string("/proc/self/status").unwrap_or_default();
    let id = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|ids| ids.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (id("Uid:"), id("Gid:"))
}

impl RuncContainer {
    pub fn logs(&self) -> String {
        fs_err::read_to_string(self.dir.join("container.log")).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Waits for the container's process to end; its exit code.
    pub fn wait(&mut self) -> Result<i32, RuntimeError> {
        let Some(child) = self.child.as_mut() else {
            return Ok(1);
        };
        let status = child.wait().map_err(|source| RuntimeError::Spawn {
            program: "runc".into(),
            source,
        })?;
        Ok(status.code().unwrap_or(128 + 9))
    }

    pub fn remove(&mut self) {
        if self.removed {
            return;
        }
        self.removed = true;
        kill_and_delete(&self.id);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        cleanup_bundle(&self.dir);
        if let Ok(mut bundles) = BUNDLES.lock() {
            bundles.remove(&self.id);
        }
    }
}

impl Drop for RuncContainer {
    fn drop(&mut self) {
        self.remove();
    }
}

fn kill_and_delete(id: &str) {
    for args in [vec!["kill", id, "KILL"], vec!["delete", "--force", id]] {
        let _ = Command::new("runc")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn cleanup_bundle(dir: &Path) {
    let rootfs = dir.join("rootfs");
    let _ = Command::new("umount")
        .arg(&rootfs)
        .stderr(Stdio::null())
        .status();
    if let Err(e) = fs_err::remove_dir_all(dir) {
        tracing::warn!("cannot remove {}: {e}", dir.display());
    }
}

/// Removes bundles that a killed `cog` left behind: runc does not know their container, and
/// they are older than any start in progress could be.
fn sweep_stale_bundles(containers: &Path) {
    let Ok(entries) = fs_err::read_dir(containers) else {
        return;
    };
    let stale_after = std::time::Duration::from_secs(600);
    for entry in entries.flatten() {
        let path = entry.path();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > stale_after);
        let id = entry.file_name().to_string_lossy().into_owned();
        if !old || !id.starts_with("cog-") {
            continue;
        }
        let known = Command::new("runc")
            .args(["state", &id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !known {
            tracing::debug!("removing the stale bundle {}", path.display());
            cleanup_bundle(&path);
        }
    }
}

/// Removes a container this process started, by id (the Ctrl-C path, without its handle).
pub(super) fn remove_by_id(id: &str) {
    kill_and_delete(id);
    let dir = BUNDLES.lock().ok().and_then(|mut b| b.remove(id));
    if let Some(dir) = dir {
        cleanup_bundle(&dir);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::PathBuf;

    use layers::Digest;

    use super::*;
    use crate::oci::{ContainerConfig, ImageConfig, Manifest};
    use crate::runtime::Mount;

    fn image(config: ContainerConfig) -> SourceImage {
        let mut image_config = ImageConfig::new_linux_amd64();
        image_config.config = Some(config);
        let digest = Digest::of(b"config");
        SourceImage {
            manifest_digest: Digest::of(b"manifest"),
            manifest_size: 0,
            manifest: Manifest::oci(
                crate::oci::Descriptor::new("application/json", digest, 0),
                Vec::new(),
            ),
            config_digest: digest,
            config: image_config,
            layers: Vec::new(),
        }
    }

    #[test]
    fn config_runs_the_image_command_with_the_project_and_port() {
        let image = image(ContainerConfig {
            entrypoint: Some(vec!["/usr/bin/tini".into(), "--".into()]),
            cmd: Some(vec!["python".into(), "-m".into(), "cog.server.http".into()]),
            env: Some(vec!["PATH=/opt/bin:/usr/bin".into(), "A=1".into()]),
            working_dir: Some("/src".into()),
            ..ContainerConfig::default()
        });
        let spec = RunSpec {
            env: vec![("A".into(), "2".into())],
            mounts: vec![Mount {
                source: PathBuf::from("/work/model"),
                target: "/src".into(),
                read_only: false,
            }],
            publish: Some(5000),
            ..RunSpec::default()
        };
        let config = bundle_config(
            &image,
            &spec,
            Some(41234),
            Path::new("/b"),
            Path::new("/b/hosts"),
            true,
        );
        assert_eq!(
            config["process"]["args"],
            json!(["/usr/bin/tini", "--", "python", "-m", "cog.server.http"])
        );
        let env = config["process"]["env"].as_array().unwrap();
        assert!(env.contains(&json!("PATH=/opt/bin:/usr/bin")), "{env:?}");
        assert!(env.contains(&json!("A=2")) && !env.contains(&json!("A=1")));
        assert!(env.contains(&json!("PORT=41234")));
        assert_eq!(config["process"]["cwd"], "/src");
        let mounts = config["mounts"].as_array().unwrap();
        assert!(mounts.iter().any(|m| m["destination"] == "/src"
            && m["source"] == "/work/model"
            && m["options"] == json!(["rbind", "rw"])));
        assert!(
            mounts
                .iter()
                .any(|m| m["destination"] == "/dev/shm" && m["options"][4] == "size=6g")
        );
        let namespaces = config["linux"]["namespaces"].as_array().unwrap();
        assert!(!namespaces.contains(&json!({"type": "network"})));
        assert!(!namespaces.contains(&json!({"type": "user"})));

        // A command given replaces Cmd, not Entrypoint; rootless gets a user namespace.
        let spec = RunSpec {
            args: vec!["ls".into()],
            ..RunSpec::default()
        };
        let config = bundle_config(&image, &spec, None, Path::new("/b"), Path::new("/h"), false);
        assert_eq!(
            config["process"]["args"],
            json!(["/usr/bin/tini", "--", "ls"])
        );
        assert!(
            config["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .contains(&json!({"type": "user"}))
        );
        assert_eq!(config["linux"]["uidMappings"][0]["containerID"], 0);
    }

    #[test]
    fn users_resolve_by_number_or_passwd() {
        let tmp = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(tmp.path().join("etc")).unwrap();
        fs_err::write(
            tmp.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nmodel:x:1000:1001::/home/model:/bin/sh\n",
        )
        .unwrap();
        assert_eq!(user_ids(None, tmp.path()), (0, 0));
        assert_eq!(user_ids(Some("model"), tmp.path()), (1000, 1001));
        assert_eq!(user_ids(Some("7:8"), tmp.path()), (7, 8));
        assert_eq!(user_ids(Some("model:5"), tmp.path()), (1000, 5));
    }

    #[test]
    fn only_old_bundles_unknown_to_runc_are_swept() {
        let tmp = tempfile::tempdir().unwrap();
        let fresh = tmp.path().join("cog-fresh000000");
        let stale = tmp.path().join("cog-stale000000");
        let other = tmp.path().join("not-ours");
        for dir in [&fresh, &stale, &other] {
            fs_err::create_dir_all(dir.join("rootfs")).unwrap();
        }
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for dir in [&stale, &other] {
            File::open(dir).unwrap().set_modified(long_ago).unwrap();
        }
        sweep_stale_bundles(tmp.path());
        assert!(fresh.exists(), "a bundle being set up is kept");
        assert!(
            !stale.exists(),
            "an old bundle runc does not know is removed"
        );
        assert!(other.exists(), "only cog's bundles are touched");
    }

    #[test]
    fn host_gateway_is_loopback() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("hosts");
        write_hosts(&path, &["host.docker.internal:host-gateway".into()]).unwrap();
        let text = fs_err::read_to_string(&path).unwrap();
        assert!(
            text.ends_with("127.0.0.1\thost.docker.internal\n"),
            "{text}"
        );
    }
}
