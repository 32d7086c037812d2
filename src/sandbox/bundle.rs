//! The OCI runtime configuration (`config.json`, runtime-spec 1.0) of one build step: `/bin/sh
//! -c COMMAND` as root in `workdir`, the host's network, the host's `/etc/resolv.conf` and
//! `/etc/hosts`, the step's secrets bind-mounted read-only, Docker's default capabilities.
use serde_json::{Value, json};

/// The capabilities a Docker `RUN` step has (Docker's default set).
pub const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The hostname commands see (BuildKit's, which `cog build` uses).
pub const HOSTNAME: &str = "buildkitsandbox";

/// A file bind-mounted read-only into the container.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub(crate) struct FileMount {
    pub source: String,
    pub target: String,
}

/// What the configuration needs.
pub(crate) struct BundleSpec<'a> {
    pub command: &'a str,
    /// The full environment, in order.
    pub env: &'a [(String, String)],
    pub workdir: &'a str,
    pub network: bool,
    /// The host files shared read-only (resolv.conf, hosts) and the secrets.
    pub mounts: &'a [FileMount],
    /// Host directories shared read-write.
    pub binds: &'a [FileMount],
    /// The open-files limit to give (this process's).
    pub nofile: u64,
}

pub(crate) fn config(spec: &BundleSpec<'_>) -> Value {
    let env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        // The host's network namespace is shared, so sysfs cannot be mounted afresh.
        json!({"destination": "/sys", "type": "none", "source": "/sys",
               "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}),
    ];
    for mount in spec.mounts {
        mounts.push(
            json!({"destination": mount.target, "type": "none", "source": mount.source,
                           "options": ["bind", "ro", "nosuid", "nodev", "noexec"]}),
        );
    }
    for bind in spec.binds {
        mounts.push(
            json!({"destination": bind.target, "type": "none", "source": bind.source,
                   "options": ["rbind", "rw", "nosuid", "nodev"]}),
        );
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if !spec.network {
        namespaces.push(json!({"type": "network"}));
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/sh", "-c", spec.command],
            "env": env,
            "cwd": spec.workdir,
            "capabilities": {
                "bounding": CAPABILITIES,
                "effective": CAPABILITIES,
                "permitted": CAPABILITIES
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": spec.nofile, "soft": spec.nofile}],
            "noNewPrivileges": false
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": HOSTNAME,
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// The hard limit on open files for this process (a container may not exceed it).
pub fn nofile_limit() -> u64 {
    fs_err::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(4)?.parse().ok())
        })
        .unwrap_or(1024)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_step_runs_sh_as_root_with_the_host_network_and_read_only_mounts() {
        let env = vec![("PATH".to_string(), "/bin".to_string())];
        let mounts = vec![FileMount {
            source: "/tmp/secret".into(),
            target: "/run/secrets/token".into(),
        }];
        let config = config(&BundleSpec {
            command: "echo hi > /x",
            env: &env,
            workdir: "/",
            network: true,
            mounts: &mounts,
            binds: &[],
            nofile: 4096,
        });
        assert_eq!(
            config["process"]["args"],
            json!(["/bin/sh", "-c", "echo hi > /x"])
        );
        assert_eq!(config["process"]["env"], json!(["PATH=/bin"]));
        assert_eq!(config["process"]["user"], json!({"uid": 0, "gid": 0}));
        assert_eq!(config["hostname"], HOSTNAME);
        let namespaces = config["linux"]["namespaces"].as_array().unwrap();
        assert!(!namespaces.contains(&json!({"type": "network"})));
        assert!(!namespaces.contains(&json!({"type": "user"})));
        let secret = config["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/run/secrets/token")
            .unwrap();
        assert_eq!(secret["options"][1], "ro");

        let offline = super::config(&BundleSpec {
            network: false,
            ..BundleSpec {
                command: "true",
                env: &env,
                workdir: "/",
                network: true,
                mounts: &[],
                binds: &[],
                nofile: 1024,
            }
        });
        assert!(
            offline["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .contains(&json!({"type": "network"}))
        );
    }
}
