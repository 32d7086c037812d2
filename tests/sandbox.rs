//! The build-command sandbox against the real runc: commands over a busybox base, their
//! changes captured as layers (checked entry by entry), reproducible, cached, as root and as an
//! unprivileged user (same digests), with secrets that leave no trace, failures that leave
//! nothing behind, and the host's network. Needs runc, busybox-static, libcap2-bin (setcap)
//! and uidmap (newuidmap); the rootless test creates a user when run as root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use cog::sandbox::{
    self, Event, RunStep, SandboxError, SandboxOptions, Secret, SecretMount, SecretSource,
    StepError, StepOutcome,
};
use layers::{BlobStore, Compression, Digest, LayerInfo, LayerOptions, LayerWriter};

const EPOCH: u64 = 1_700_000_000;

fn store_in(dir: &Path) -> BlobStore {
    BlobStore::open(dir.join("store"))
        .unwrap()
        .with_fsync(false)
}

fn options() -> SandboxOptions {
    common::require_tool("runc", "runc");
    let mut options = SandboxOptions::new(Compression::gzip());
    options.helper = PathBuf::from(env!("CARGO_BIN_EXE_cog"));
    options.source_date_epoch = EPOCH;
    options.threads = Some(2);
    options
}

/// A base layer: busybox with the applets the commands use, `setcap` with its libraries,
/// `/etc/marker`, a directory `/opt/dir` with a file, `/tmp`.
fn base(store: &BlobStore, marker: &str) -> LayerInfo {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.is_file(),
        "these tests need /bin/busybox: install the Debian package `busybox-static`"
    );
    common::require_tool("setcap", "libcap2-bin");
    let mut writer = LayerWriter::new(store, &LayerOptions::new(Compression::gzip())).unwrap();
    let file = |writer: &mut LayerWriter, path: &str, source: &Path, mode: u32| {
        let bytes = std::fs::read(source).unwrap();
        writer
            .append_file(path, mode, bytes.len() as u64, &mut &bytes[..])
            .unwrap();
    };
    writer.append_dir("bin", 0o755).unwrap();
    file(&mut writer, "bin/busybox", busybox, 0o755);
    for applet in [
        "sh",
        "cat",
        "echo",
        "ls",
        "rm",
        "mkdir",
        "chmod",
        "chown",
        "ln",
        "cp",
        "touch",
        "wget",
        "sha256sum",
        "cut",
        "test",
        "[",
        "false",
        "true",
        "printf",
        "id",
        "sleep",
        "find",
        "stat",
    ] {
        writer
            .append_symlink(format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    // setcap and what it links to, at the paths its loader looks in.
    let setcap = common::run("sh", &["-c", "command -v setcap"]);
    let setcap = Path::new(setcap.trim());
    let libraries = common::run("ldd", &[setcap.to_str().unwrap()]);
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    files.insert("sbin/setcap".into(), setcap.to_path_buf());
    for line in libraries.lines() {
        let path = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(str::to_string);
        if let Some(path) = path {
            files.insert(
                path.trim_start_matches('/').into(),
                std::fs::canonicalize(&path).unwrap(),
            );
        }
    }
    let mut dirs = std::collections::BTreeSet::new();
    for path in files.keys() {
        let mut parent = Path::new(path).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(dir.to_path_buf());
            parent = dir.parent();
        }
    }
    for dir in &dirs {
        if dir != Path::new("bin") {
            writer.append_dir(dir, 0o755).unwrap();
        }
    }
    for (path, source) in &files {
        file(&mut writer, path, source, 0o755);
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
    writer.append_dir("opt", 0o755).unwrap();
    writer.append_dir("opt/dir", 0o755).unwrap();
    writer
        .append_file("opt/dir/old", 0o644, 3, &mut &b"old"[..])
        .unwrap();
    writer.append_dir("tmp", 0o1777).unwrap();
    writer.finish().unwrap()
}

/// Runs `steps`; the output lines by step, and the outcomes.
fn run(
    store: &BlobStore,
    lower: &[LayerInfo],
    steps: &[RunStep],
    secrets: &[Secret],
    options: &SandboxOptions,
) -> (
    Result<Vec<StepOutcome>, SandboxError>,
    Vec<(usize, String)>,
    Vec<usize>,
) {
    let mut lines = Vec::new();
    let mut started = Vec::new();
    let result = sandbox::run_steps(
        store,
        lower,
        steps,
        secrets,
        options,
        &mut |event| match event {
            Event::Output { step, line } => lines.push((step, line.to_string())),
            Event::Started { step, .. } => started.push(step),
            Event::Cached { .. } | Event::Finished { .. } => {}
        },
    );
    assert_clean(store);
    (result, lines, started)
}

/// Nothing of a run is left: no work directory, no mount.
fn assert_clean(store: &BlobStore) {
    let runs = store.root().join("sandbox/runs");
    if runs.is_dir() {
        let left: Vec<_> = std::fs::read_dir(&runs).unwrap().collect();
        assert!(
            left.is_empty(),
            "work directories left in {}: {left:?}",
            runs.display()
        );
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = store.root().to_string_lossy().into_owned();
    assert!(
        !mounts.contains(&root),
        "mounts left under {root}:\n{mounts}"
    );
}

fn decompressed(store: &BlobStore, layer: &LayerInfo) -> Vec<u8> {
    let blob = std::fs::read(store.blob_path(&layer.digest)).unwrap();
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&blob[..])
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(Digest::of(&tar), layer.diff_id);
    tar
}

/// One line per entry: `path type mode uid:gid mtime [-> link] [content] [xattrs]`.
fn listing(store: &BlobStore, layer: &LayerInfo) -> Vec<String> {
    let tar = decompressed(store, layer);
    let mut archive = tar::Archive::new(&tar[..]);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            let mut line = format!(
                "{} {} {:o} {}:{} {}",
                entry.path().unwrap().display(),
                header.entry_type().as_byte() as char,
                header.mode().unwrap(),
                header.uid().unwrap(),
                header.gid().unwrap(),
                header.mtime().unwrap(),
            );
            if let Some(link) = entry.link_name().unwrap() {
                line.push_str(&format!(" -> {}", link.display()));
            }
            let xattrs: Vec<String> = entry
                .pax_extensions()
                .unwrap()
                .into_iter()
                .flatten()
                .map(Result::unwrap)
                .filter_map(|e| {
                    let key = e.key().unwrap().strip_prefix("SCHILY.xattr.")?.to_string();
                    Some(format!("{key}={}", hex::encode(e.value_bytes())))
                })
                .collect();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            if !content.is_empty() {
                line.push_str(&format!(" {:?}", String::from_utf8_lossy(&content)));
            }
            if !xattrs.is_empty() {
                line.push_str(&format!(" [{}]", xattrs.join(",")));
            }
            line
        })
        .collect()
}

/// A command that makes every kind of change a layer records.
const EVERYTHING: &str = "set -e
echo built > /etc/built.txt
chmod 0600 /etc/built.txt
rm /etc/marker
rm -rf /opt/dir && mkdir /opt/dir && echo new > /opt/dir/new
ln -s /etc/built.txt /etc/link
ln /etc/built.txt /etc/hard
mkdir -p /home/model && echo mine > /home/model/file && chown -R 1000:1000 /home/model
mkdir -p /usr/local/bin
printf 'x' > /usr/local/bin/tool && chmod 0755 /usr/local/bin/tool
setcap cap_net_raw+ep /usr/local/bin/tool
printf 's' > /usr/local/bin/suid && chmod 4755 /usr/local/bin/suid
echo done";

/// The layer EVERYTHING writes, entry by entry (cap_net_raw+ep as a v2 capability).
fn everything_listing() -> Vec<String> {
    let e = EPOCH;
    let cap = "security.capability=0100000200200000000000000000000000000000";
    vec![
        format!("etc/ 5 755 0:0 {e}"),
        format!("etc/built.txt 0 600 0:0 {e} \"built\\n\""),
        format!("etc/hard 1 600 0:0 {e} -> etc/built.txt"),
        format!("etc/link 2 777 0:0 {e} -> /etc/built.txt"),
        format!("etc/.wh.marker 0 0 0:0 {e}"),
        format!("home/ 5 755 0:0 {e}"),
        format!("home/model/ 5 755 1000:1000 {e}"),
        format!("home/model/file 0 644 1000:1000 {e} \"mine\\n\""),
        format!("opt/ 5 755 0:0 {e}"),
        format!("opt/dir/ 5 755 0:0 {e}"),
        format!("opt/dir/.wh..wh..opq 0 0 0:0 {e}"),
        format!("opt/dir/new 0 644 0:0 {e} \"new\\n\""),
        format!("usr/ 5 755 0:0 {e}"),
        format!("usr/local/ 5 755 0:0 {e}"),
        format!("usr/local/bin/ 5 755 0:0 {e}"),
        format!("usr/local/bin/suid 0 4755 0:0 {e} \"s\""),
        format!("usr/local/bin/tool 0 755 0:0 {e} \"x\" [{cap}]"),
    ]
}

#[test]
fn a_step_captures_every_kind_of_change_reproducibly_and_is_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path());
    let base = base(&store, "one");
    let options = options();
    let steps = [RunStep::new(EVERYTHING)];

    let (result, lines, started) = run(&store, &[base.clone()], &steps, &[], &options);
    let first = result.unwrap();
    assert_eq!(started, [0]);
    assert!(lines.contains(&(0, "done".to_string())), "{lines:?}");
    assert!(!first[0].cached);
    assert_eq!(listing(&store, &first[0].layer), everything_listing());

    // Cached: nothing runs.
    let (result, lines, started) = run(&store, &[base.clone()], &steps, &[], &options);
    let cached = result.unwrap();
    assert!(cached[0].cached && started.is_empty() && lines.is_empty());
    assert_eq!(cached[0].layer, first[0].layer);

    // --no-cache runs it again: the same layer.
    let no_cache = SandboxOptions {
        no_cache: true,
        ..options.clone()
    };
    let (result, _, started) = run(&store, &[base.clone()], &steps, &[], &no_cache);
    let again = result.unwrap();
    assert_eq!(started, [0]);
    assert!(!again[0].cached);
    assert_eq!(again[0].layer, first[0].layer);

    // A fresh cache elsewhere: the same digest.
    let other = tempfile::tempdir().unwrap();
    let other_store = store_in(other.path());
    let other_base = base_layer_in(&other_store);
    assert_eq!(other_base, base);
    let (result, _, _) = run(&other_store, &[other_base], &steps, &[], &options);
    assert_eq!(result.unwrap()[0].layer, first[0].layer);
}

fn base_layer_in(store: &BlobStore) -> LayerInfo {
    base(store, "one")
}

#[test]
fn steps_see_the_ones_before_and_a_changed_layer_below_reruns_all_above() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path());
    let one = base(&store, "one");
    let two = base(&store, "two");
    let options = options();
    let steps = [
        RunStep::new("cat /etc/marker > /copied"),
        RunStep {
            env: vec![("GREETING".into(), "hello".into())],
            ..RunStep::new(
                "echo \"$GREETING $(cat /copied) $SOURCE_DATE_EPOCH $(cat /proc/sys/kernel/hostname)\" > /second",
            )
        },
    ];
    let (result, _, _) = run(&store, &[one.clone()], &steps, &[], &options);
    let first = result.unwrap();
    let second = listing(&store, &first[1].layer);
    assert_eq!(
        second,
        [format!(
            "second 0 644 0:0 {EPOCH} \"hello one {EPOCH} buildkitsandbox\\n\""
        )]
    );

    let (result, _, started) = run(&store, &[two.clone()], &steps, &[], &options);
    let rebuilt = result.unwrap();
    assert_eq!(started, [0, 1], "both steps run again over another base");
    assert_ne!(rebuilt[1].key, first[1].key);
    assert!(listing(&store, &rebuilt[1].layer)[0].contains("hello two"));

    // The first base again: both from the cache.
    let (result, _, started) = run(&store, &[one], &steps, &[], &options);
    assert!(started.is_empty());
    let layers =
        |outcomes: &[StepOutcome]| outcomes.iter().map(|o| o.layer.clone()).collect::<Vec<_>>();
    assert_eq!(layers(&result.unwrap()), layers(&first));
}

#[test]
fn a_failing_command_reports_its_exit_code_and_tail_and_keeps_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path());
    let base = base(&store, "one");
    let options = options();
    let blobs = |store: &BlobStore| {
        std::fs::read_dir(store.root().join("blobs/sha256"))
            .unwrap()
            .count()
    };
    let before = blobs(&store);
    // stdout and stderr come through runc's pipes, so only the order within each is kept.
    let command = "echo partial > /partial; echo to stderr >&2; sleep 0.2; \
                   i=0; while [ $i -lt 25 ]; do echo line $i; i=$((i+1)); done; echo oops; exit 3";
    let steps = [RunStep::new(command)];
    for _ in 0..2 {
        let (result, lines, started) = run(&store, &[base.clone()], &steps, &[], &options);
        assert_eq!(started, [0], "a failed step is never cached");
        let err = result.unwrap_err();
        let SandboxError::CommandFailed {
            exit_code, tail, ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!(*exit_code, 3);
        assert_eq!(tail.len(), sandbox::TAIL_LINES);
        assert_eq!(tail.last().unwrap(), "oops");
        assert_eq!(tail.first().unwrap(), "line 6");
        assert_eq!(lines.len(), 27);
        assert_eq!(lines[0], (0, "to stderr".to_string()));
        let message = err.to_string();
        assert!(
            message.contains("exit code 3") && message.contains(command),
            "{message}"
        );
        assert_eq!(blobs(&store), before, "no blob written");
    }
    // Fixed, it runs and is recorded.
    let (result, _, _) = run(
        &store,
        &[base],
        &[RunStep::new("echo fixed > /fixed")],
        &[],
        &options,
    );
    result.unwrap();
}

#[test]
fn secrets_are_mounted_while_their_step_runs_and_never_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path());
    let base = base(&store, "one");
    let options = options();
    let value = format!("s3cr3t-{}-{}", std::process::id(), EPOCH);
    let source = tmp.path().join("token.txt");
    std::fs::write(&source, &value).unwrap();
    let secrets = [
        Secret {
            id: "token".into(),
            source: SecretSource::File(source.clone()),
        },
        Secret {
            id: "other".into(),
            source: SecretSource::Bytes(value.as_bytes().to_vec()),
        },
    ];
    let steps = [RunStep {
        mounts: vec![
            SecretMount {
                id: "token".into(),
                target: sandbox::default_target("token"),
            },
            SecretMount {
                id: "other".into(),
                target: "/root/.netrc".into(),
            },
        ],
        ..RunStep::new(
            "set -e; sha256sum /run/secrets/token | cut -d' ' -f1 > /token.sha; \
             test \"$(cat /root/.netrc)\" = \"$(cat /run/secrets/token)\"; \
             (echo written > /run/secrets/token) 2>/dev/null && echo WRITABLE; true",
        )
    }];
    let (result, lines, _) = run(&store, &[base.clone()], &steps, &secrets, &options);
    let outcome = result.unwrap();
    assert!(
        !lines.iter().any(|(_, l)| l.contains("WRITABLE")),
        "{lines:?}"
    );
    assert_eq!(
        listing(&store, &outcome[0].layer),
        [format!(
            "token.sha 0 644 0:0 {EPOCH} \"{}\\n\"",
            Digest::of(value.as_bytes()).hex()
        )],
        "the command read the secret; neither it nor its mount points are in the layer"
    );
    assert!(!outcome[0].key.contains(&value));

    // No trace anywhere in the cache: blobs (decompressed), keys, unpacked layers.
    let needle = value.as_bytes();
    for entry in walkdir::WalkDir::new(store.root()) {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        let mut text = bytes.clone();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            text.clear();
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut text)
                .unwrap();
        }
        assert!(
            !text.windows(needle.len()).any(|w| w == needle),
            "the secret is in {}",
            entry.path().display()
        );
    }

    // An unknown id is an error naming it, before anything runs.
    let unknown = [RunStep {
        mounts: vec![SecretMount {
            id: "missing".into(),
            target: "/run/secrets/missing".into(),
        }],
        ..RunStep::new("true")
    }];
    let (result, _, started) = run(&store, &[base], &unknown, &secrets, &options);
    let err = result.unwrap_err().to_string();
    assert!(err.contains("\"missing\"") && started.is_empty(), "{err}");
}

#[test]
fn commands_reach_the_network() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request).unwrap();
        let body = "from the host";
        write!(
            stream,
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
    });
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path());
    let base = base(&store, "one");
    let steps = [RunStep::new(format!(
        "wget -q -O /fetched http://127.0.0.1:{port}/hello"
    ))];
    let (result, lines, _) = run(&store, &[base], &steps, &[], &options());
    let outcome = result.unwrap_or_else(|e| panic!("{e}: {lines:?}"));
    server.join().unwrap();
    assert_eq!(
        listing(&store, &outcome[0].layer),
        [format!("fetched 0 644 0:0 {EPOCH} \"from the host\"")]
    );
}

#[test]
fn unrunnable_platforms_and_oversized_layers_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path());
    let base = base(&store, "one");
    let steps = [RunStep::new("echo hi > /hi")];
    let blobs_before = std::fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .count();

    // An architecture with no emulator registered here.
    let foreign = ["s390x", "riscv64", "ppc64le", "mips64le"]
        .into_iter()
        .find(|arch| {
            let registered = std::fs::read_dir(sandbox::BINFMT_DIR)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().contains(arch));
            !registered
        })
        .expect("an architecture without an emulator");
    let mut options = options();
    options.platform = format!("linux/{foreign}").parse().unwrap();
    let (result, _, started) = run(&store, &[base.clone()], &steps, &[], &options);
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains(&format!("linux/{foreign}")) && err.contains("emulator"),
        "{err}"
    );
    assert!(started.is_empty());

    // The size cap on unpacking names the layer.
    let mut options = self::options();
    options.max_unpacked_bytes = 1000;
    let (result, _, _) = run(&store, &[base.clone()], &steps, &[], &options);
    let err = result.unwrap_err();
    let source = std::error::Error::source(&err)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        matches!(&err, SandboxError::Step { source: StepError::TooLarge { layer, limit: 1000 }, .. } if *layer == base.digest.to_string()),
        "{err}: {source}"
    );
    assert_eq!(
        std::fs::read_dir(store.root().join("blobs/sha256"))
            .unwrap()
            .count(),
        blobs_before
    );
    // Nothing half-unpacked is kept: the next run unpacks and runs.
    let (result, _, _) = run(&store, &[base], &steps, &[], &self::options());
    result.unwrap();
}

/// Run as another user by `rootless_runs_as_an_unprivileged_user_with_the_same_digests`.
#[test]
#[ignore = "run by the rootless test, as an unprivileged user"]
fn rootless_worker() {
    let Some(dir) = std::env::var_os("COG_SANDBOX_WORKER_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let store = store_in(&dir);
    let base = base(&store, "one");
    let mut options = options();
    options.helper = PathBuf::from(std::env::var_os("COG_SANDBOX_WORKER_HELPER").unwrap());
    let (result, lines, _) = run(&store, &[base], &[RunStep::new(EVERYTHING)], &[], &options);
    let outcome =
        result.unwrap_or_else(|e| panic!("{e}: {:?}; {lines:?}", std::error::Error::source(&e)));
    std::fs::write(
        dir.join("result.json"),
        serde_json::to_string(&outcome[0].layer).unwrap(),
    )
    .unwrap();
    // The second run comes from the cache.
    let (result, _, started) = run(
        &store,
        &[base_layer_in(&store)],
        &[RunStep::new(EVERYTHING)],
        &[],
        &options,
    );
    assert!(result.unwrap()[0].cached && started.is_empty());
}

/// A user made for the test (as root), removed with its subordinate ids afterwards.
struct TestUser {
    name: String,
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel")
            .args(["--remove", &self.name])
            .status();
    }
}

#[test]
fn rootless_runs_as_an_unprivileged_user_with_the_same_digests() {
    common::require_tool("newuidmap", "uidmap");
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path());
    let base = base(&store, "one");
    let (result, _, _) = run(
        &store,
        &[base],
        &[RunStep::new(EVERYTHING)],
        &[],
        &options(),
    );
    let as_root = result.unwrap();

    let work = tempfile::Builder::new()
        .prefix("cog-rootless-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(
        work.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let test_exe = std::env::current_exe().unwrap();
    let mut command;
    let _user;
    if rustix::process::geteuid().is_root() {
        let name = format!("cogsbx{}", std::process::id() % 100_000);
        common::run("useradd", &["--create-home", "--shell", "/bin/sh", &name]);
        _user = TestUser { name: name.clone() };
        let has_ids = |file: &str| {
            std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .any(|l| l.starts_with(&format!("{name}:")))
        };
        if !has_ids("/etc/subuid") || !has_ids("/etc/subgid") {
            common::run(
                "usermod",
                &[
                    "--add-subuids",
                    "300000-365535",
                    "--add-subgids",
                    "300000-365535",
                    &name,
                ],
            );
        }
        command = Command::new("setpriv");
        command
            .args(["--reuid", &name, "--regid", &name, "--init-groups", "--"])
            .arg(&test_exe)
            .env("HOME", format!("/home/{name}"));
    } else {
        command = Command::new(&test_exe);
    }
    let output = command
        .args(["rootless_worker", "--exact", "--ignored", "--nocapture"])
        .env("COG_SANDBOX_WORKER_DIR", work.path())
        .env("COG_SANDBOX_WORKER_HELPER", env!("CARGO_BIN_EXE_cog"))
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("COG_CACHE_DIR")
        .output()
        .unwrap();
    let result = std::fs::read_to_string(work.path().join("result.json")).unwrap_or_else(|_| {
        panic!(
            "the rootless run failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let rootless: LayerInfo = serde_json::from_str(&result).unwrap();
    assert_eq!(
        rootless, as_root[0].layer,
        "root and rootless write the same layer"
    );
    // What the user's sandbox unpacked is theirs; root removes it here.
    drop(work);
}
