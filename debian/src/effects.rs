//! What maintainer scripts would have done, for the effects common images depend on (we never
//! run the scripts). The list, and what is not handled, is in docs/system-packages.md.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::Error;
use crate::layer::LayerTar;

/// What the effects need to know about the packages being installed.
#[derive(Debug, Default)]
pub struct Installing {
    /// Absolute paths of everything the new packages ship.
    pub paths: BTreeSet<String>,
    /// Contents of the files effects read (`/usr/share/base-passwd/*`, certificates, ...).
    pub captured: BTreeMap<String, Vec<u8>>,
    /// Names of the new packages.
    pub packages: BTreeSet<String>,
    /// `postinst` scripts by package.
    pub postinst: BTreeMap<String, String>,
}

/// Whether effects want a file's content.
pub fn wants(path: &str) -> bool {
    path.starts_with("/usr/share/base-passwd/")
        || path.starts_with("/usr/share/base-files/")
        || (path.starts_with("/usr/share/ca-certificates/") && path.ends_with(".crt"))
        || path == "/usr/share/debianutils/shells"
        || path.starts_with("/usr/share/debianutils/shells.d/")
}

pub fn apply(inst: &Installing, layer: &mut LayerTar) -> Result<(), Error> {
    alternatives(inst, layer)?;
    base_files(inst, layer)?;
    passwd(inst, layer)?;
    timezone(inst, layer)?;
    certificates(inst, layer)?;
    shells(inst, layer)?;
    Ok(())
}

/// One `update-alternatives --install` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    pub link: String,
    pub name: String,
    pub path: String,
    pub priority: i64,
    /// (link, name, path)
    pub slaves: Vec<(String, String, String)>,
}

/// Finds literal `update-alternatives --install` calls in a maintainer script (calls built
/// from shell variables are skipped).
pub fn parse_alternatives(script: &str) -> Vec<Alternative> {
    let joined = script.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let Some(pos) = line.find("update-alternatives") else {
            continue;
        };
        let words: Vec<&str> = line[pos..].split_whitespace().collect();
        let Some(i) = words.iter().position(|w| *w == "--install") else {
            continue;
        };
        let args = &words[i + 1..];
        if args.len() < 4 {
            continue;
        }
        let literal = |s: &str| !s.contains('$') && !s.contains('`') && !s.contains('"');
        let Ok(priority) = args[3].trim_end_matches(';').parse::<i64>() else {
            continue;
        };
        if !args[..3].iter().all(|a| literal(a)) {
            continue;
        }
        let mut alt = Alternative {
            link: args[0].to_owned(),
            name: args[1].to_owned(),
            path: args[2].to_owned(),
            priority,
            slaves: Vec::new(),
        };
        let mut rest = &args[4..];
        while rest.len() >= 4 && rest[0] == "--slave" {
            if rest[1..4].iter().all(|a| literal(a)) {
                alt.slaves.push((
                    rest[1].to_owned(),
                    rest[2].to_owned(),
                    rest[3].trim_end_matches(';').to_owned(),
                ));
            }
            rest = &rest[4..];
        }
        out.push(alt);
    }
    out
}

fn alternatives(inst: &Installing, layer: &mut LayerTar) -> Result<(), Error> {
    let mut by_name: BTreeMap<String, Vec<Alternative>> = BTreeMap::new();
    for script in inst.postinst.values() {
        for alt in parse_alternatives(script) {
            if inst.paths.contains(&alt.path) {
                by_name.entry(alt.name.clone()).or_default().push(alt);
            }
        }
    }
    if by_name.is_empty() {
        return Ok(());
    }
    layer.dir("/etc/alternatives")?;
    layer.dir("/var/lib/dpkg/alternatives")?;
    for (name, mut alts) in by_name {
        // Auto mode: highest priority wins; ties by path for determinism.
        alts.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| a.path.cmp(&b.path))
        });
        let best = &alts[0];
        layer.link(&best.link, &format!("/etc/alternatives/{name}"))?;
        layer.link(&format!("/etc/alternatives/{name}"), &best.path)?;
        for (link, slave, path) in &best.slaves {
            if inst.paths.contains(path) {
                layer.link(link, &format!("/etc/alternatives/{slave}"))?;
                layer.link(&format!("/etc/alternatives/{slave}"), path)?;
            }
        }
        layer.file(
            &format!("/var/lib/dpkg/alternatives/{name}"),
            0o644,
            alternatives_db(best, &alts).as_bytes(),
        )?;
    }
    Ok(())
}

/// update-alternatives' administrative file (`/var/lib/dpkg/alternatives/<name>`).
fn alternatives_db(best: &Alternative, alts: &[Alternative]) -> String {
    let mut s = format!("auto\n{}\n", best.link);
    for (link, name, _) in &best.slaves {
        let _ = write!(s, "{name}\n{link}\n");
    }
    s.push('\n');
    for alt in alts {
        let _ = write!(s, "{}\n{}\n", alt.path, alt.priority);
        for (_, name, _) in &best.slaves {
            let path = alt
                .slaves
                .iter()
                .find(|(_, n, _)| n == name)
                .map_or("", |(_, _, p)| p.as_str());
            let _ = writeln!(s, "{path}");
        }
    }
    s.push('\n');
    s
}

/// The gid of `group` in base-passwd's master file, else `default`.
fn group_gid(inst: &Installing, group: &str, default: u64) -> u64 {
    inst.captured
        .get("/usr/share/base-passwd/group.master")
        .and_then(|g| {
            String::from_utf8_lossy(g).lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.first() == Some(&group))
                    .then(|| f.get(2).and_then(|g| g.parse().ok()))
                    .flatten()
            })
        })
        .unwrap_or(default)
}

/// base-files' postinst on first configure: default dotfiles and /etc/profile, the FHS
/// directories it creates, /run links, /usr/local, and the login records.
fn base_files(inst: &Installing, layer: &mut LayerTar) -> Result<(), Error> {
    if !inst.packages.contains("base-files") {
        return Ok(());
    }
    let defaults = [
        ("dot.profile", "/root/.profile"),
        ("dot.bashrc", "/root/.bashrc"),
        ("profile", "/etc/profile"),
        ("motd", "/etc/motd"),
        ("info.dir", "/usr/share/info/dir"),
    ];
    for (name, dest) in defaults {
        if let Some(data) = inst.captured.get(&format!("/usr/share/base-files/{name}"))
            && !inst.paths.contains(dest)
        {
            layer.file(dest, 0o644, data)?;
        }
    }
    for dir in ["/mnt", "/srv", "/opt", "/etc/opt", "/var/opt", "/media"] {
        layer.dir(dir)?;
    }
    layer.dir_with("/var/mail", 0o2775, group_gid(inst, "mail", 8))?;
    layer.dir("/run")?;
    layer.dir_with("/run/lock", 0o1777, 0)?;
    layer.link("/var/run", "/run")?;
    layer.link("/var/lock", "/run/lock")?;
    layer.link("/var/spool/mail", "../mail")?;
    if inst.paths.contains("/etc/dpkg/origins/debian")
        && !inst.paths.contains("/etc/dpkg/origins/default")
    {
        layer.link("/etc/dpkg/origins/default", "debian")?;
    }
    for dir in [
        "",
        "/share",
        "/share/man",
        "/bin",
        "/games",
        "/lib",
        "/include",
        "/sbin",
        "/src",
        "/etc",
    ] {
        layer.dir(&format!("/usr/local{dir}"))?;
    }
    layer.link("/usr/local/man", "share/man")?;
    let utmp = group_gid(inst, "utmp", 43);
    layer.dir("/var/log")?;
    layer.file_owned("/var/log/wtmp", 0o664, utmp, b"")?;
    layer.file_owned("/var/log/btmp", 0o660, utmp, b"")?;
    layer.file_owned("/var/log/lastlog", 0o664, utmp, b"")?;
    Ok(())
}

/// base-passwd's postinst: /etc/passwd and /etc/group from the master files; passwd's
/// `shadowconfig on`: /etc/shadow and /etc/gshadow.
fn passwd(inst: &Installing, layer: &mut LayerTar) -> Result<(), Error> {
    let (Some(passwd), Some(group)) = (
        inst.captured.get("/usr/share/base-passwd/passwd.master"),
        inst.captured.get("/usr/share/base-passwd/group.master"),
    ) else {
        return Ok(());
    };
    let shadowed = inst.packages.contains("passwd");
    // With shadow files (pwconv/grpconv), the password field in passwd/group becomes `x`.
    let conv = |data: &[u8]| -> Vec<u8> {
        if !shadowed {
            return data.to_vec();
        }
        let mut out = String::new();
        for line in String::from_utf8_lossy(data).lines() {
            let mut f: Vec<&str> = line.split(':').collect();
            if f.len() > 1 {
                f[1] = "x";
            }
            out.push_str(&f.join(":"));
            out.push('\n');
        }
        out.into_bytes()
    };
    layer.file("/etc/passwd", 0o644, &conv(passwd))?;
    layer.file("/etc/group", 0o644, &conv(group))?;
    if shadowed {
        let shadow_gid = group_gid(inst, "shadow", 42);
        let shadow: String = String::from_utf8_lossy(passwd)
            .lines()
            .filter_map(|l| l.split(':').next())
            .filter(|n| !n.is_empty())
            .fold(String::new(), |mut out, n| {
                let _ = writeln!(out, "{n}:*::0:99999:7:::");
                out
            });
        let gshadow: String = String::from_utf8_lossy(group)
            .lines()
            .filter_map(|l| l.split(':').next())
            .filter(|n| !n.is_empty())
            .fold(String::new(), |mut out, n| {
                let _ = writeln!(out, "{n}:*::");
                out
            });
        layer.file_owned("/etc/shadow", 0o640, shadow_gid, shadow.as_bytes())?;
        layer.file_owned("/etc/gshadow", 0o640, shadow_gid, gshadow.as_bytes())?;
    }
    Ok(())
}

/// tzdata's postinst with debconf defaults: UTC.
fn timezone(inst: &Installing, layer: &mut LayerTar) -> Result<(), Error> {
    if inst.packages.contains("tzdata") && inst.paths.contains("/usr/share/zoneinfo/Etc/UTC") {
        layer.link("/etc/localtime", "/usr/share/zoneinfo/Etc/UTC")?;
        layer.file("/etc/timezone", 0o644, b"Etc/UTC\n")?;
    }
    Ok(())
}

/// ca-certificates' `update-ca-certificates`: the config, the bundle and the per-certificate
/// links (the OpenSSL subject-hash links are not made; the bundle is what OpenSSL loads).
fn certificates(inst: &Installing, layer: &mut LayerTar) -> Result<(), Error> {
    if !inst.packages.contains("ca-certificates") {
        return Ok(());
    }
    let certs: Vec<(&String, &Vec<u8>)> = inst
        .captured
        .iter()
        .filter(|(p, _)| p.starts_with("/usr/share/ca-certificates/") && p.ends_with(".crt"))
        .collect();
    let mut conf = String::from(
        "# Generated by cog (the effect of update-ca-certificates); see ca-certificates.conf(5).\n",
    );
    let mut bundle = Vec::new();
    layer.dir("/etc/ssl/certs")?;
    for (path, data) in &certs {
        let rel = path.trim_start_matches("/usr/share/ca-certificates/");
        conf.push_str(rel);
        conf.push('\n');
        bundle.extend_from_slice(data);
        if !bundle.ends_with(b"\n") {
            bundle.push(b'\n');
        }
        let base = rel
            .rsplit('/')
            .next()
            .unwrap_or(rel)
            .trim_end_matches(".crt");
        layer.link(&format!("/etc/ssl/certs/{base}.pem"), path)?;
    }
    // The postinst makes the directory for local certificates (`COG_CA_CERT` goes there).
    layer.dir_with(
        "/usr/local/share/ca-certificates",
        0o2775,
        group_gid(inst, "staff", 50),
    )?;
    layer.file("/etc/ca-certificates.conf", 0o644, conf.as_bytes())?;
    layer.file("/etc/ssl/certs/ca-certificates.crt", 0o644, &bundle)?;
    Ok(())
}

/// debianutils' `update-shells`: /etc/shells from the packaged lists.
fn shells(inst: &Installing, layer: &mut LayerTar) -> Result<(), Error> {
    let Some(base) = inst.captured.get("/usr/share/debianutils/shells") else {
        return Ok(());
    };
    let mut out = String::from_utf8_lossy(base).into_owned();
    let mut seen: BTreeSet<String> = out.lines().map(str::to_owned).collect();
    for (path, data) in &inst.captured {
        if path.starts_with("/usr/share/debianutils/shells.d/") {
            for line in String::from_utf8_lossy(data).lines() {
                if !line.starts_with('#') && !line.trim().is_empty() && seen.insert(line.to_owned())
                {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
    }
    layer.file("/etc/shells", 0o644, out.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_literal_alternatives_with_slaves() {
        let script = "#!/bin/sh\nif [ configure ]; then\n  update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\\n    --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz\n  update-alternatives --install $X y $Z 10\nfi\n";
        let alts = parse_alternatives(script);
        assert_eq!(alts.len(), 1);
        assert_eq!(alts[0].link, "/usr/bin/awk");
        assert_eq!(alts[0].priority, 5);
        assert_eq!(alts[0].slaves[0].1, "awk.1.gz");
    }

    #[test]
    fn alternatives_db_lists_every_choice() {
        let a = parse_alternatives(
            "update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 --slave /m/awk.1 awk.1 /m/mawk.1\n",
        );
        insta::assert_snapshot!(alternatives_db(&a[0], &a), @r"
        auto
        /usr/bin/awk
        awk.1
        /m/awk.1

        /usr/bin/mawk
        5
        /m/mawk.1
        ");
    }
}
