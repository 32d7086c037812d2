//! `git+…` requirements through the `git` command: a revision is resolved to a commit
//! (`git ls-remote`, else a fetch), the commit fetched shallowly into a bare repository cached
//! per URL, and its tree exported for the build.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use url::Url;

use crate::error::{Error, Result};
use crate::requirements::GitUrl;

/// Bare repositories under `<cache>/git-v1/<hash of the URL>`.
#[derive(Debug, Clone)]
pub struct GitCache {
    dir: PathBuf,
}

fn is_full_sha(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_hex_prefix(rev: &str) -> bool {
    (7..40).contains(&rev.len()) && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The repository URL with its password masked, for messages.
fn shown(url: &Url) -> String {
    crate::requirements::mask_credentials(url.as_str())
}

impl GitCache {
    /// `cache_dir` is the wheels cache; `None` uses a directory under the system's temp dir.
    pub fn new(cache_dir: Option<&Path>) -> Self {
        let dir = cache_dir.map_or_else(
            || std::env::temp_dir().join("cog-wheels-git"),
            |d| d.join("git-v1"),
        );
        Self { dir }
    }

    fn repo_dir(&self, repository: &Url) -> PathBuf {
        let h = Sha256::digest(repository.as_str().as_bytes());
        self.dir.join(hex::encode(&h[..12]))
    }

    fn git() -> Command {
        let mut c = Command::new("git");
        c.env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "true")
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        c
    }

    fn run(repository: &Url, action: &'static str, cmd: &mut Command) -> Result<Vec<u8>> {
        let out = cmd.output().map_err(|e| Error::GitCommand {
            repository: shown(repository),
            source: Arc::new(e),
        })?;
        if !out.status.success() {
            return Err(Error::Git {
                repository: shown(repository),
                action,
                stderr: crate::requirements::mask_credentials(
                    String::from_utf8_lossy(&out.stderr).trim(),
                ),
            });
        }
        Ok(out.stdout)
    }

    /// The bare repository for `repository`, created on first use.
    fn bare(&self, repository: &Url) -> Result<PathBuf> {
        let dir = self.repo_dir(repository);
        if dir.join("HEAD").is_file() {
            return Ok(dir);
        }
        fs_err::create_dir_all(&self.dir)?;
        let tmp = tempfile::Builder::new()
            .prefix(".init-")
            .tempdir_in(&self.dir)?;
        Self::run(
            repository,
            "init",
            Self::git()
                .args(["init", "--bare", "--quiet"])
                .arg(tmp.path()),
        )?;
        // Another process may have made it meanwhile: theirs is as good.
        if std::fs::rename(tmp.path(), &dir).is_err() && !dir.join("HEAD").is_file() {
            return Err(Error::Io(Arc::new(std::io::Error::other(format!(
                "cannot create the git cache {}",
                dir.display()
            )))));
        }
        Ok(dir)
    }

    /// The commit `source.rev` names (the remote's `HEAD` when none), fetched into the cache.
    pub fn resolve(&self, source: &GitUrl) -> Result<String> {
        let repo = &source.repository;
        let bare = self.bare(repo)?;
        let commit = match source.rev.as_deref() {
            Some(rev) if is_full_sha(rev) => rev.to_ascii_lowercase(),
            rev => {
                let wanted = rev.unwrap_or("HEAD");
                match Self::ls_remote(repo, wanted)? {
                    Some(sha) => sha,
                    None if is_hex_prefix(wanted) => Self::fetch_all_and_find(repo, &bare, wanted)?,
                    None => {
                        return Err(Error::GitRevNotFound {
                            repository: shown(repo),
                            rev: wanted.to_string(),
                        });
                    }
                }
            }
        };
        Self::fetch_commit(repo, &bare, &commit, source.rev.as_deref())?;
        Ok(commit)
    }

    /// The commit a ref name points at on the remote (branches, then tags, peeled).
    fn ls_remote(repo: &Url, rev: &str) -> Result<Option<String>> {
        let out = Self::run(
            repo,
            "ls-remote",
            Self::git().arg("ls-remote").arg(repo.as_str()),
        )?;
        let text = String::from_utf8_lossy(&out);
        let refs: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('\t')).collect();
        let find = |name: &str| {
            refs.iter()
                .find(|(_, r)| *r == name)
                .map(|(s, _)| s.to_string())
        };
        Ok(find(rev)
            .filter(|_| rev == "HEAD" || rev.starts_with("refs/"))
            .or_else(|| find(&format!("refs/heads/{rev}")))
            .or_else(|| find(&format!("refs/tags/{rev}^{{}}")))
            .or_else(|| find(&format!("refs/tags/{rev}"))))
    }

    fn has_commit(bare: &Path, commit: &str) -> bool {
        Self::git()
            .arg("--git-dir")
            .arg(bare)
            .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn fetch_commit(repo: &Url, bare: &Path, commit: &str, rev: Option<&str>) -> Result<()> {
        if Self::has_commit(bare, commit) {
            return Ok(());
        }
        let shallow = Self::run(
            repo,
            "fetch",
            Self::git()
                .arg("--git-dir")
                .arg(bare)
                .args(["fetch", "--quiet", "--depth", "1", "--no-write-fetch-head"])
                .arg(repo.as_str())
                .arg(format!("+{commit}:refs/cog/{commit}")),
        );
        if shallow.is_ok() && Self::has_commit(bare, commit) {
            return Ok(());
        }
        // A server that refuses fetches by commit, or a commit that is gone: fetch every
        // branch and tag, and look again. A server that cannot be reached says so here.
        Self::fetch_everything(repo, bare)?;
        if Self::has_commit(bare, commit) {
            return Ok(());
        }
        Err(Error::GitRevNotFound {
            repository: shown(repo),
            rev: rev.unwrap_or(commit).to_string(),
        })
    }

    fn fetch_everything(repo: &Url, bare: &Path) -> Result<()> {
        Self::run(
            repo,
            "fetch",
            Self::git()
                .arg("--git-dir")
                .arg(bare)
                .args(["fetch", "--quiet", "--no-write-fetch-head"])
                .arg(repo.as_str())
                .args([
                    "+refs/heads/*:refs/cog-all/heads/*",
                    "+refs/tags/*:refs/cog-all/tags/*",
                ]),
        )
        .map(drop)
    }

    /// An abbreviated commit: the whole repository is fetched to expand it.
    fn fetch_all_and_find(repo: &Url, bare: &Path, prefix: &str) -> Result<String> {
        Self::fetch_everything(repo, bare)?;
        let out = Self::run(
            repo,
            "rev-parse",
            Self::git().arg("--git-dir").arg(bare).args([
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{prefix}^{{commit}}"),
            ]),
        )
        .map_err(|_| Error::GitRevNotFound {
            repository: shown(repo),
            rev: prefix.to_string(),
        })?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }

    /// Writes the tree of `commit` (with its submodules) into `dest`; returns the project
    /// directory (`subdirectory` applied).
    pub fn export(&self, source: &GitUrl, commit: &str, dest: &Path) -> Result<PathBuf> {
        let repo = &source.repository;
        let bare = self.bare(repo)?;
        Self::fetch_commit(repo, &bare, commit, source.rev.as_deref())?;
        let has_submodules = Self::git()
            .arg("--git-dir")
            .arg(&bare)
            .args(["cat-file", "-e", &format!("{commit}:.gitmodules")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if has_submodules {
            Self::checkout_with_submodules(source, &bare, commit, dest)?;
        } else {
            let mut child = Self::git()
                .arg("--git-dir")
                .arg(&bare)
                .args(["archive", "--format=tar", commit])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| Error::GitCommand {
                    repository: shown(repo),
                    source: Arc::new(e),
                })?;
            let stdout = child.stdout.take().ok_or(Error::Task("git archive"))?;
            let unpacked = crate::sdist::unpack_tar_stream(
                stdout,
                &format!("{} at {commit}", shown(repo)),
                dest,
            );
            let out = child.wait_with_output().map_err(|e| Error::GitCommand {
                repository: shown(repo),
                source: Arc::new(e),
            })?;
            if !out.status.success() {
                return Err(Error::Git {
                    repository: shown(repo),
                    action: "archive",
                    stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                });
            }
            unpacked?;
        }
        match &source.subdirectory {
            None => Ok(dest.to_path_buf()),
            Some(sub) => {
                let dir = safe_path::join(dest, sub).map_err(|e| Error::UnsafeName {
                    origin: source.to_string(),
                    source: e,
                })?;
                if !dir.is_dir() {
                    return Err(Error::Git {
                        repository: shown(repo),
                        action: "checkout",
                        stderr: format!(
                            "commit {commit} has no directory {sub:?} (#subdirectory=)"
                        ),
                    });
                }
                Ok(dir)
            }
        }
    }

    /// pip's `git submodule update --init --recursive` on a checkout made from the cache.
    fn checkout_with_submodules(
        source: &GitUrl,
        bare: &Path,
        commit: &str,
        dest: &Path,
    ) -> Result<()> {
        let repo = &source.repository;
        Self::run(
            repo,
            "clone",
            Self::git()
                .args(["clone", "--quiet", "--no-checkout", "--shared"])
                .arg(bare)
                .arg(dest),
        )?;
        let in_dest = |args: &[&str]| {
            let mut c = Self::git();
            c.arg("-C").arg(dest).args(args);
            c
        };
        Self::run(
            repo,
            "checkout",
            &mut in_dest(&["checkout", "--quiet", commit]),
        )?;
        // Relative submodule URLs are relative to the real remote, not to the cache.
        Self::run(
            repo,
            "config",
            &mut in_dest(&["config", "remote.origin.url", repo.as_str()]),
        )?;
        Self::run(
            repo,
            "submodule update",
            &mut in_dest(&[
                "-c",
                "protocol.file.allow=always",
                "submodule",
                "update",
                "--init",
                "--recursive",
                "--quiet",
            ]),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn resolves_refs_and_exports_trees() {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join("work");
        std::fs::create_dir(&work).unwrap();
        sh(&work, &["init", "--quiet", "-b", "main"]);
        std::fs::create_dir(work.join("py")).unwrap();
        std::fs::write(work.join("py/a.txt"), "one").unwrap();
        sh(&work, &["add", "."]);
        sh(&work, &["commit", "--quiet", "-m", "one"]);
        let first = sh(&work, &["rev-parse", "HEAD"]);
        sh(&work, &["tag", "-a", "v1", "-m", "v1"]);
        std::fs::write(work.join("py/a.txt"), "two").unwrap();
        sh(&work, &["commit", "--quiet", "-am", "two"]);
        let second = sh(&work, &["rev-parse", "HEAD"]);

        let cache = GitCache::new(Some(&tmp.path().join("cache")));
        let url = Url::from_file_path(&work).unwrap();
        let src = |rev: Option<&str>| GitUrl {
            repository: url.clone(),
            rev: rev.map(str::to_string),
            subdirectory: Some("py".into()),
        };
        assert_eq!(cache.resolve(&src(None)).unwrap(), second);
        assert_eq!(cache.resolve(&src(Some("main"))).unwrap(), second);
        assert_eq!(cache.resolve(&src(Some("v1"))).unwrap(), first);
        assert_eq!(cache.resolve(&src(Some(&first))).unwrap(), first);
        assert_eq!(cache.resolve(&src(Some(&first[..10]))).unwrap(), first);
        let e = cache.resolve(&src(Some("no-such-branch"))).unwrap_err();
        assert!(matches!(e, Error::GitRevNotFound { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains("no branch, tag or commit `no-such-branch`"),
            "{e}"
        );
        let e = cache.resolve(&src(Some(&"ab".repeat(20)))).unwrap_err();
        assert!(matches!(e, Error::GitRevNotFound { .. }), "{e:?}");

        let out = tmp.path().join("out");
        let dir = cache.export(&src(Some("v1")), &first, &out).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("a.txt")).unwrap(), "one");
    }
}
