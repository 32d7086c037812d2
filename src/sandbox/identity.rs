//! Who runs the sandbox: root, or a user who gets a user namespace in which they are root, with
//! their subordinate ids (`/etc/subuid`, `/etc/subgid`) mapped to container ids 1 and up, so
//! that `chown 1000 file` inside works and keeps its id in the layer (as rootless Docker and
//! podman do).
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::error::RootlessError;

/// How a user's ids map into the sandbox's user namespace: container id 0 is the user,
/// container ids `1..=count` are the subordinate range starting at `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub host_id: u32,
    pub start: u32,
    pub count: u32,
}

/// How the sandbox gets root inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Privilege {
    /// This process is root: no user namespace.
    Root,
    /// A user namespace with these uid and gid maps (set up with newuidmap/newgidmap).
    UserNamespace { uids: IdMap, gids: IdMap },
}

impl Privilege {
    /// What this process can use: root, or a user namespace; what is missing when neither.
    pub fn detect() -> Result<Privilege, RootlessError> {
        if rustix::process::geteuid().is_root() {
            return Ok(Privilege::Root);
        }
        for (knob, fix) in [
            (
                "/proc/sys/kernel/unprivileged_userns_clone",
                "kernel.unprivileged_userns_clone=1",
            ),
            (
                "/proc/sys/user/max_user_namespaces",
                "user.max_user_namespaces=15000",
            ),
        ] {
            if fs_err::read_to_string(knob).is_ok_and(|v| v.trim() == "0") {
                return Err(RootlessError::UserNamespacesDisabled {
                    setting: format!("{knob} is 0"),
                    setting_fix: fix.to_string(),
                });
            }
        }
        for tool in ["newuidmap", "newgidmap"] {
            if super::find_program(tool).is_none() {
                return Err(RootlessError::MissingTool { tool });
            }
        }
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        let user = user_name(uid, Path::new("/etc/passwd")).unwrap_or_else(|| uid.to_string());
        let range = |file: &'static str, kind: &'static str, host_id: u32| {
            let text = fs_err::read_to_string(file).unwrap_or_default();
            subordinate_range(&text, &user, uid)
                .map(|(start, count)| IdMap {
                    host_id,
                    start,
                    count,
                })
                .ok_or_else(|| RootlessError::NoSubordinateIds {
                    kind,
                    file,
                    user: user.clone(),
                    uid,
                })
        };
        Ok(Privilege::UserNamespace {
            uids: range("/etc/subuid", "user", uid)?,
            gids: range("/etc/subgid", "group", gid)?,
        })
    }

    /// A name for the on-disk format of what this privilege unpacks (owners as mapped, and
    /// `trusted.` or `user.` overlay attributes): snapshots of different formats never mix.
    pub(crate) fn format_name(&self) -> String {
        match self {
            Privilege::Root => "root".to_string(),
            Privilege::UserNamespace { uids, gids } => format!(
                "userns-{}-{}-{}-{}-{}-{}",
                uids.host_id, uids.start, uids.count, gids.host_id, gids.start, gids.count
            ),
        }
    }
}

/// Writes the maps of the user namespace process `pid` is in, with newuidmap and newgidmap.
pub(crate) fn write_maps(pid: u32, uids: &IdMap, gids: &IdMap) -> Result<(), RootlessError> {
    for (tool, map) in [("newuidmap", uids), ("newgidmap", gids)] {
        let args = [
            pid.to_string(),
            "0".into(),
            map.host_id.to_string(),
            "1".into(),
            "1".into(),
            map.start.to_string(),
            map.count.to_string(),
        ];
        let command = format!("{tool} {}", args.join(" "));
        let output =
            Command::new(tool)
                .args(&args)
                .output()
                .map_err(|e| RootlessError::MappingFailed {
                    command: command.clone(),
                    status: "not started".into(),
                    stderr: e.to_string(),
                })?;
        if !output.status.success() {
            return Err(RootlessError::MappingFailed {
                command,
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
    }
    Ok(())
}

/// The login name of `uid` in a passwd file.
fn user_name(uid: u32, passwd: &Path) -> Option<String> {
    let text = fs_err::read_to_string(passwd).ok()?;
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 2 && fields[2] == uid.to_string()).then(|| fields[0].to_string())
    })
}

/// The first range (start, count) for the user, by name or uid, in a subuid/subgid file.
fn subordinate_range(text: &str, user: &str, uid: u32) -> Option<(u32, u32)> {
    text.lines().find_map(|line| {
        let mut fields = line.trim().split(':');
        let owner = fields.next()?;
        let start = fields.next()?.parse().ok()?;
        let count: u32 = fields.next()?.parse().ok()?;
        ((owner == user || owner == uid.to_string()) && count > 0).then_some((start, count))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn subordinate_ranges_match_by_name_or_uid() {
        let text = "alice:100000:65536\n# comment\n1001:200000:1000\nbob:300000:0\n";
        assert_eq!(
            subordinate_range(text, "alice", 1000),
            Some((100_000, 65536))
        );
        assert_eq!(
            subordinate_range(text, "carol", 1001),
            Some((200_000, 1000))
        );
        assert_eq!(subordinate_range(text, "bob", 1002), None, "an empty range");
        assert_eq!(subordinate_range(text, "dave", 1003), None);
    }

    #[test]
    fn names_come_from_passwd() {
        let tmp = tempfile::tempdir().unwrap();
        let passwd = tmp.path().join("passwd");
        fs_err::write(
            &passwd,
            "root:x:0:0::/root:/bin/sh\nmodel:x:1000:1000::/home/m:/bin/sh\n",
        )
        .unwrap();
        assert_eq!(user_name(1000, &passwd).as_deref(), Some("model"));
        assert_eq!(user_name(7, &passwd), None);
    }

    #[test]
    fn what_is_missing_is_named() {
        let err = RootlessError::NoSubordinateIds {
            kind: "user",
            file: "/etc/subuid",
            user: "model".into(),
            uid: 1000,
        }
        .to_string();
        assert!(
            err.contains("/etc/subuid") && err.contains("usermod --add-subuids"),
            "{err}"
        );
        let err = RootlessError::MissingTool { tool: "newuidmap" }.to_string();
        assert!(
            err.contains("newuidmap") && err.contains("apt-get install uidmap"),
            "{err}"
        );
    }
}
