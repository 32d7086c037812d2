//! The build-command sandbox against the real runc: commands over a busybox base, their
//! changes captured as layers (checked entry by entry), reproducible, cached, as root and as an
//! unprivileged user (same digests), with secrets that leave no trace, failures that leave
//! nothing behind, and the host's network. Needs runc, busybox-static, libcap2-bin (setcap)
//! and uidmap (newuidmap); the rootless test creates a user when run as root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::users::{TestUser, shared_dir};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write as _};
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

/// What [`run`] saw: the result, the output lines by step, the steps that ran.
type Ran = (
    Result<Vec<StepOutcome>, SandboxError>,
    Vec<(usize, String)>,
    Vec<usize>,
);

/// Runs `steps` over `base`.
fn run(
    store: &BlobStore,
    base: &LayerInfo,
    steps: &[RunStep],
    secrets: &[Secret],
    options: &SandboxOptions,
) -> Ran {
    let mut lines = Vec::new();
    let mut started = Vec::new();
    let result = sandbox::run_steps(
        store,
        std::slice::from_ref(base),
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
                let _ = write!(line, " -> {}", link.display());
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
                let _ = write!(line, " {:?}", String::from_utf8_lossy(&content));
            }
            if !xattrs.is_empty() {
                let _ = write!(line, " [{}]", xattrs.join(","));
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

    let (result, lines, started) = run(&store, &base, &steps, &[], &options);
    let first = result.unwrap();
    assert_eq!(started, [0]);
    assert!(lines.contains(&(0, "done".to_string())), "{lines:?}");
    assert!(!first[0].cached);
    assert_eq!(listing(&store, &first[0].layer), everything_listing());

    // Cached: nothing runs.
    let (result, lines, started) = run(&store, &base, &steps, &[], &options);
    let cached = result.unwrap();
    assert!(cached[0].cached && started.is_empty() && lines.is_empty());
    assert_eq!(cached[0].layer, first[0].layer);

    // --no-cache runs it again: the same layer.
    let no_cache = SandboxOptions {
        no_cache: true,
        ..options.clone()
    };
    let (result, _, started) = run(&store, &base, &steps, &[], &no_cache);
    let again = result.unwrap();
    assert_eq!(started, [0]);
    assert!(!again[0].cached);
    assert_eq!(again[0].layer, first[0].layer);

    // A fresh cache elsewhere: the same digest.
    let other = tempfile::tempdir().unwrap();
    let other_store = store_in(other.path());
    let other_base = base_layer_in(&other_store);
    assert_eq!(other_base, base);
    let (result, _, _) = run(&other_store, &other_base, &steps, &[], &options);
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
        RunStep {
            workdir: "/work/dir".into(),
            ..RunStep::new("cat /etc/marker > /copied; pwd > /pwd")
        },
        RunStep {
            env: vec![("GREETING".into(), "hello".into())],
            ..RunStep::new(
                "echo \"$GREETING $(cat /copied) $SOURCE_DATE_EPOCH $(cat /proc/sys/kernel/hostname)\" > /second",
            )
        },
    ];
    let (result, _, _) = run(&store, &one, &steps, &[], &options);
    let first = result.unwrap();
    assert_eq!(
        listing(&store, &first[0].layer),
        [
            format!("copied 0 644 0:0 {EPOCH} \"one\""),
            format!("pwd 0 644 0:0 {EPOCH} \"/work/dir\\n\""),
        ],
        "the working directory is made for the run, not kept"
    );
    let second = listing(&store, &first[1].layer);
    assert_eq!(
        second,
        [format!(
            "second 0 644 0:0 {EPOCH} \"hello one {EPOCH} buildkitsandbox\\n\""
        )]
    );

    let (result, _, started) = run(&store, &two, &steps, &[], &options);
    let rebuilt = result.unwrap();
    assert_eq!(started, [0, 1], "both steps run again over another base");
    assert_ne!(rebuilt[1].key, first[1].key);
    assert!(listing(&store, &rebuilt[1].layer)[0].contains("hello two"));

    // The first base again: both from the cache.
    let (result, _, started) = run(&store, &one, &steps, &[], &options);
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
        let (result, lines, started) = run(&store, &base, &steps, &[], &options);
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
        &base,
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
    let (result, lines, _) = run(&store, &base, &steps, &secrets, &options);
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
    let (result, _, started) = run(&store, &base, &unknown, &secrets, &options);
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
    let url = format!("http://127.0.0.1:{port}/hello");
    let steps = [
        RunStep::new(format!("wget -q -O /fetched {url}")),
        RunStep {
            network: false,
            ..RunStep::new(format!(
                "wget -q -T 2 -O /again {url} || echo no network > /offline"
            ))
        },
    ];
    let (result, lines, _) = run(&store, &base, &steps, &[], &options());
    let outcome = result.unwrap_or_else(|e| panic!("{e}: {lines:?}"));
    server.join().unwrap();
    assert_eq!(
        listing(&store, &outcome[0].layer),
        [format!("fetched 0 644 0:0 {EPOCH} \"from the host\"")]
    );
    assert_eq!(
        listing(&store, &outcome[1].layer),
        [format!("offline 0 644 0:0 {EPOCH} \"no network\\n\"")],
        "a step without network has a loopback only"
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

    // An architecture this machine cannot run: one without an emulator registered (as the
    // sandbox itself decides), else one no emulator is known for (qemu-user-static may
    // register them all).
    let foreign_options = |arch: &str| {
        let mut options = options();
        options.platform = format!("linux/{arch}").parse().unwrap();
        options
    };
    let foreign = ["s390x", "riscv64", "ppc64le", "mips64le", "mips"]
        .into_iter()
        .find(|arch| sandbox::check_host(&foreign_options(arch)).is_err())
        .expect("an architecture this machine cannot run");
    let options = foreign_options(foreign);
    let (result, _, started) = run(&store, &base, &steps, &[], &options);
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains(&format!("linux/{foreign}")) && err.contains("emulator"),
        "{err}"
    );
    assert!(started.is_empty());

    // The size cap on unpacking names the layer.
    let mut options = self::options();
    options.max_unpacked_bytes = 1000;
    let (result, _, _) = run(&store, &base, &steps, &[], &options);
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
    let (result, _, _) = run(&store, &base, &steps, &[], &self::options());
    result.unwrap();
}

/// Runs in a process of its own, started by the tests below (`COG_SANDBOX_WORKER` says what to
/// do; `COG_SANDBOX_WORKER_DIR` is where), possibly as another user.
#[test]
#[ignore = "run by other tests, in a process of its own"]
fn worker() {
    let (Some(mode), Some(dir)) = (
        std::env::var("COG_SANDBOX_WORKER").ok(),
        std::env::var_os("COG_SANDBOX_WORKER_DIR"),
    ) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let store = store_in(&dir);
    let base = base(&store, "one");
    let options = options();
    let report = |text: String| std::fs::write(dir.join("result.txt"), text).unwrap();
    match mode.as_str() {
        "rootless" => {
            let steps = [RunStep::new(EVERYTHING)];
            let (result, lines, _) = run(&store, &base, &steps, &[], &options);
            let outcome = result
                .unwrap_or_else(|e| panic!("{e}: {:?}; {lines:?}", std::error::Error::source(&e)));
            // Again: from the cache.
            let (result, _, started) = run(&store, &base, &steps, &[], &options);
            assert!(result.unwrap()[0].cached && started.is_empty());
            // What the sandbox unpacked belongs to subordinate ids: only it can remove that.
            assert!(store.root().join("sandbox/snapshots").is_dir());
            sandbox::remove_unpacked(&store, &options).unwrap();
            std::fs::remove_dir_all(store.root()).unwrap();
            report(serde_json::to_string(&outcome[0].layer).unwrap());
        }
        "no-subordinate-ids" => {
            let (result, _, started) = run(&store, &base, &[RunStep::new("true")], &[], &options);
            assert!(started.is_empty());
            report(result.unwrap_err().to_string());
        }
        "interrupt" => {
            let (sender, receiver) = std::sync::mpsc::channel();
            let runner = std::thread::spawn(move || {
                let started = std::time::Instant::now();
                let result = sandbox::run_steps(
                    &store,
                    &[base],
                    &[RunStep::new("echo started; sleep 6161")],
                    &[],
                    &options,
                    &mut |event| {
                        if let Event::Output { line, .. } = event {
                            let _ = sender.send(line.to_string());
                        }
                    },
                );
                (result, started.elapsed())
            });
            let line = receiver
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap();
            assert_eq!(line, "started");
            sandbox::interrupt_all();
            let (result, elapsed) = runner.join().unwrap();
            assert!(elapsed.as_secs() < 30, "{elapsed:?}");
            report(result.unwrap_err().to_string());
        }
        "apt" => {
            let (lower, env): (Vec<LayerInfo>, Vec<(String, String)>) =
                serde_json::from_str(&std::fs::read_to_string(dir.join("base.json")).unwrap())
                    .unwrap();
            let store = BlobStore::open(dir.join("debian"))
                .unwrap()
                .with_fsync(false);
            // Root's run is recorded in this store: run it again all the same.
            let options = SandboxOptions {
                no_cache: true,
                ..options
            };
            report(apt_step(&store, &lower, env, &options));
        }
        other => panic!("unknown worker mode {other}"),
    }
}

/// `apt-get update && apt-get install jq` over the default base; what it installed, or the error.
fn apt_step(
    store: &BlobStore,
    lower: &[LayerInfo],
    env: Vec<(String, String)>,
    options: &SandboxOptions,
) -> String {
    let steps = [RunStep {
        env,
        ..RunStep::new(
            "apt-get update -qq && apt-get install -y -qq --no-install-recommends jq \
             && jq -n '1+1' && id _apt && ls -ln /var/lib/apt/lists/ | grep -c partial",
        )
    }];
    let mut lines = Vec::new();
    let result = sandbox::run_steps(store, lower, &steps, &[], options, &mut |event| {
        if let Event::Output { line, .. } = event {
            lines.push(line.to_string());
        }
    });
    match result {
        Ok(outcomes) => {
            let listing = listing(store, &outcomes[0].layer);
            let jq = listing
                .iter()
                .find(|l| l.starts_with("usr/bin/jq "))
                .map(|l| l.split(" \"").next().unwrap_or_default().to_string())
                .unwrap_or_default();
            format!("{jq}\n{}", lines.join("\n"))
        }
        Err(e) => format!(
            "failed: {e}: {:?}\n{}",
            std::error::Error::source(&e),
            lines.join("\n")
        ),
    }
}

/// Runs [`worker`] in `mode` in a new process (as `user` when given); its report.
fn run_worker(mode: &str, dir: &Path, user: Option<&str>) -> String {
    let test_exe = std::env::current_exe().unwrap();
    let mut command = match user {
        Some(name) => {
            let mut command = Command::new("setpriv");
            command
                .args(["--reuid", name, "--regid", name, "--init-groups", "--"])
                .arg(&test_exe)
                .env("HOME", format!("/home/{name}"));
            command
        }
        None => Command::new(&test_exe),
    };
    let output = command
        .args(["worker", "--exact", "--ignored", "--nocapture"])
        .env("COG_SANDBOX_WORKER", mode)
        .env("COG_SANDBOX_WORKER_DIR", dir)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("COG_CACHE_DIR")
        .output()
        .unwrap();
    let report = std::fs::read_to_string(dir.join("result.txt")).unwrap_or_else(|_| {
        panic!(
            "the worker ({mode}) failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    report
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn rootless_runs_as_an_unprivileged_user_with_the_same_digests() {
    common::require_tool("newuidmap", "uidmap");
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path());
    let base = base(&store, "one");
    let (result, _, _) = run(&store, &base, &[RunStep::new(EVERYTHING)], &[], &options());
    let as_root = result.unwrap();

    let work = shared_dir();
    let user = is_root().then(|| TestUser::new("u", true));
    let report = run_worker(
        "rootless",
        work.path(),
        user.as_ref().map(|u| u.name.as_str()),
    );
    let rootless: LayerInfo = serde_json::from_str(&report).unwrap();
    assert_eq!(
        rootless, as_root[0].layer,
        "root and rootless write the same layer"
    );
}

#[test]
fn a_user_without_subordinate_ids_is_told_what_is_missing() {
    if !is_root() {
        eprintln!("skipped: making a user without subordinate ids needs root");
        return;
    }
    let work = shared_dir();
    let user = TestUser::new("n", false);
    let report = run_worker("no-subordinate-ids", work.path(), Some(&user.name));
    assert!(
        report.contains("/etc/subuid")
            && report.contains(&user.name)
            && report.contains("usermod --add-subuids"),
        "{report}"
    );
}

#[test]
fn an_interrupted_step_stops_at_once_and_the_next_run_cleans_up() {
    let work = shared_dir();
    let report = run_worker("interrupt", work.path(), None);
    assert!(report.contains("ended without an answer"), "{report}");
    // The command died with its sandbox.
    let alive = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| cmdline == b"sleep\x006161\x00")
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while alive() {
        assert!(
            std::time::Instant::now() < deadline,
            "`sleep 6161` outlived its sandbox"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Its work directory stays until the next run sweeps it.
    let store = store_in(work.path());
    let runs = store.root().join("sandbox/runs");
    let left: Vec<_> = std::fs::read_dir(&runs).unwrap().flatten().collect();
    assert_eq!(left.len(), 1);
    let container = format!("cog-{}", left[0].file_name().to_string_lossy());
    let base = base(&store, "one");
    let (result, _, _) = run(&store, &base, &[RunStep::new("true")], &[], &options());
    result.unwrap();
    // So are the cgroups runc made for it (as root).
    let cgroups = common::run(
        "find",
        &["/sys/fs/cgroup", "-maxdepth", "4", "-name", &container],
    );
    assert_eq!(cgroups.trim(), "", "cgroups left behind");
}

#[test]
fn apt_get_installs_packages_in_a_step_as_root_and_rootless() {
    let work = shared_dir();
    let store = BlobStore::open(work.path().join("debian"))
        .unwrap()
        .with_fsync(false);
    let base = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(debian::base::assemble_base("3.11", "amd64", &store))
        .unwrap();
    let options = options();
    let report = apt_step(&store, &base.layers, base.env.clone(), &options);
    let expect = |report: &str| {
        assert!(report.starts_with("usr/bin/jq 0 755 0:0 "), "{report}");
        assert!(report.contains("\n2\n"), "jq ran: {report}");
        assert!(report.contains("uid=42(_apt)"), "{report}");
    };
    expect(&report);

    if is_root() {
        std::fs::write(
            work.path().join("base.json"),
            serde_json::to_string(&(&base.layers, &base.env)).unwrap(),
        )
        .unwrap();
        let user = TestUser::new("a", true);
        // The user's own cache: the blobs, without what root unpacked.
        std::fs::remove_dir_all(store.root().join("sandbox")).unwrap();
        common::run("chown", &["-R", &user.name, work.path().to_str().unwrap()]);
        let report = run_worker("apt", work.path(), Some(&user.name));
        expect(&report);
    }
}

#[test]
fn layers_unpacked_ahead_serve_the_next_step_and_cost_nothing_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let options = options();
    let base = base_layer_in(&store);
    sandbox::prepare_lower(&store, std::slice::from_ref(&base), &options).unwrap();
    assert_clean(&store);
    let snapshots = store.root().join("sandbox/snapshots");
    let unpacked: Vec<PathBuf> = std::fs::read_dir(&snapshots)
        .unwrap()
        .flat_map(|format| std::fs::read_dir(format.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(unpacked.len(), 1, "{unpacked:?}");
    let chain = sandbox::chain_id([base.diff_id].iter()).unwrap();
    assert!(unpacked[0].ends_with(chain.hex()), "{unpacked:?}");
    assert!(unpacked[0].join("etc/marker").is_file());
    // Already there: nothing is started (a helper that cannot run proves it).
    let mut broken = options.clone();
    broken.helper = PathBuf::from("/nonexistent/cog");
    sandbox::prepare_lower(&store, std::slice::from_ref(&base), &broken).unwrap();
    // The step over it finds it and runs.
    let (result, _, _) = run(
        &store,
        &base,
        &[RunStep::new("cat /etc/marker > /copied")],
        &[],
        &options,
    );
    let outcomes = result.unwrap();
    let listed = listing(&store, &outcomes[0].layer);
    assert!(
        listed.iter().any(|l| l.starts_with("copied ")),
        "{listed:?}"
    );
}
