//! Unprivileged users for tests that run a command as one (the tests run as root).
use std::process::Command;

/// A user made for a test (the test runs as root), removed with its subordinate ids after.
pub struct TestUser {
    pub name: String,
}

impl TestUser {
    /// A new user, with subordinate ids or without.
    pub fn new(tag: &str, subordinate_ids: bool) -> TestUser {
        let name = format!("cogsbx{tag}{}", std::process::id() % 100_000);
        let mut args = vec!["--create-home", "--shell", "/bin/sh"];
        if !subordinate_ids {
            args.extend(["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0"]);
        }
        args.push(&name);
        super::run("useradd", &args);
        let user = TestUser { name };
        let listed = |file: &str| {
            std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .any(|l| l.starts_with(&format!("{}:", user.name)))
        };
        if subordinate_ids && !(listed("/etc/subuid") && listed("/etc/subgid")) {
            super::run(
                "usermod",
                &[
                    "--add-subuids",
                    "300000-365535",
                    "--add-subgids",
                    "300000-365535",
                    &user.name,
                ],
            );
        }
        assert_eq!(listed("/etc/subuid"), subordinate_ids);
        user
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel")
            .args(["--remove", &self.name])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A directory any user may write in, removed (by root) afterwards.
pub fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("cog-sandbox-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    dir
}
