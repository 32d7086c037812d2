//! Whether this machine can run a platform's binaries: natively, or through an emulator
//! registered with `binfmt_misc` (qemu-user). Without one, a foreign `/bin/sh` fails with an
//! exec format error at best; we refuse up front instead, never writing a layer for the wrong
//! architecture.
use std::path::Path;

use crate::oci::Platform;

/// Where the kernel lists registered binary formats.
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// The host's platform, as OCI names it.
pub fn host_platform() -> Platform {
    Platform::new("linux", std::env::consts::ARCH, None)
}

/// `Ok` when commands for `platform` can run here; the reason when not. `binfmt_dir` is
/// [`BINFMT_DIR`] but for tests.
pub(crate) fn check_runnable(platform: &Platform, binfmt_dir: &Path) -> Result<(), String> {
    if platform.os != "linux" {
        return Err(format!("{platform} is not a Linux platform"));
    }
    let host = host_platform();
    if platform.architecture == host.architecture
        || (host.architecture == "amd64" && platform.architecture == "386")
    {
        return Ok(());
    }
    let Some(header) = elf_header(&platform.architecture) else {
        return Err(format!(
            "no emulator is known for the architecture {}",
            platform.architecture
        ));
    };
    let enabled = fs_err::read_to_string(binfmt_dir.join("status"))
        .is_ok_and(|status| status.trim() == "enabled");
    if !enabled {
        return Err(format!(
            "binfmt_misc is not mounted or not enabled ({}), so no emulator can run {} \
             binaries; register qemu-user-static (apt-get install qemu-user-static \
             binfmt-support) or build on a {} machine",
            binfmt_dir.display(),
            platform.architecture,
            platform.architecture
        ));
    }
    let mut without_fix = None;
    for entry in fs_err::read_dir(binfmt_dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "status" || name == "register" {
            continue;
        }
        let Ok(text) = fs_err::read_to_string(entry.path()) else {
            continue;
        };
        let format = BinaryFormat::parse(&text);
        if !format.enabled || !format.matches(&header) {
            continue;
        }
        if format.fix_binary {
            return Ok(());
        }
        without_fix = Some(name);
    }
    Err(match without_fix {
        Some(name) => format!(
            "the emulator {name:?} is registered without the F (fix binary) flag, so it cannot \
             run inside a container; register it with F (qemu-user-static does)"
        ),
        None => format!(
            "no emulator for {} is registered with binfmt_misc; register qemu-user-static \
             (apt-get install qemu-user-static binfmt-support) or build on a {} machine",
            platform.architecture, platform.architecture
        ),
    })
}

/// The first 20 bytes of an executable for `architecture`: ELF identification, type
/// (executable), machine.
fn elf_header(architecture: &str) -> Option<[u8; 20]> {
    // (64-bit, big endian, e_machine)
    let (wide, big, machine): (bool, bool, u16) = match architecture {
        "amd64" => (true, false, 62),
        "386" => (false, false, 3),
        "arm64" => (true, false, 183),
        "arm" => (false, false, 40),
        "ppc64le" => (true, false, 21),
        "s390x" => (true, true, 22),
        "riscv64" => (true, false, 243),
        "mips64le" => (true, false, 8),
        "loong64" => (true, false, 258),
        _ => return None,
    };
    let mut header = [0u8; 20];
    header[..4].copy_from_slice(b"\x7fELF");
    header[4] = if wide { 2 } else { 1 };
    header[5] = if big { 2 } else { 1 };
    header[6] = 1; // EV_CURRENT
    let (kind, machine) = if big {
        (2u16.to_be_bytes(), machine.to_be_bytes())
    } else {
        (2u16.to_le_bytes(), machine.to_le_bytes())
    };
    header[16..18].copy_from_slice(&kind);
    header[18..20].copy_from_slice(&machine);
    Some(header)
}

/// One `binfmt_misc` entry, as the kernel prints it.
#[derive(Debug, Default)]
struct BinaryFormat {
    enabled: bool,
    fix_binary: bool,
    offset: usize,
    magic: Vec<u8>,
    mask: Vec<u8>,
}

impl BinaryFormat {
    fn parse(text: &str) -> Self {
        let mut format = BinaryFormat::default();
        for line in text.lines() {
            let line = line.trim();
            if line == "enabled" {
                format.enabled = true;
            } else if let Some(flags) = line.strip_prefix("flags:") {
                format.fix_binary = flags.contains('F');
            } else if let Some(offset) = line.strip_prefix("offset ") {
                format.offset = offset.trim().parse().unwrap_or(0);
            } else if let Some(magic) = line.strip_prefix("magic ") {
                format.magic = hex::decode(magic.trim()).unwrap_or_default();
            } else if let Some(mask) = line.strip_prefix("mask ") {
                format.mask = hex::decode(mask.trim()).unwrap_or_default();
            }
        }
        format
    }

    fn matches(&self, header: &[u8]) -> bool {
        if self.magic.is_empty() || self.offset + self.magic.len() > header.len() {
            return false;
        }
        self.magic.iter().enumerate().all(|(i, &want)| {
            let mask = self.mask.get(i).copied().unwrap_or(0xff);
            header[self.offset + i] & mask == want & mask
        })
    }
}

/// The first executable file named `name` on `$PATH`.
pub fn find_program(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// qemu-user-static's registration for aarch64, as the kernel prints it.
    const QEMU_AARCH64: &str = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n\
        flags: POCF\noffset 0\n\
        magic 7f454c460201010000000000000000000200b700\n\
        mask ffffffffffffff00fffffffffffffffffeffffff\n";

    #[test]
    fn the_host_platform_always_runs() {
        let tmp = tempfile::tempdir().unwrap();
        check_runnable(&host_platform(), tmp.path()).unwrap();
    }

    #[test]
    fn a_foreign_platform_needs_a_registered_emulator_with_fix_binary() {
        let foreign: Platform = if host_platform().architecture == "arm64" {
            "linux/amd64".parse().unwrap()
        } else {
            "linux/arm64".parse().unwrap()
        };
        let tmp = tempfile::tempdir().unwrap();
        let err = check_runnable(&foreign, tmp.path()).unwrap_err();
        assert!(err.contains("binfmt_misc is not mounted"), "{err}");

        fs_err::write(tmp.path().join("status"), "enabled\n").unwrap();
        let err = check_runnable(&foreign, tmp.path()).unwrap_err();
        assert!(err.contains("no emulator for"), "{err}");
        assert!(err.contains("qemu-user-static"), "{err}");

        if foreign.architecture == "arm64" {
            fs_err::write(
                tmp.path().join("qemu-aarch64"),
                QEMU_AARCH64.replace("POCF", "POC"),
            )
            .unwrap();
            let err = check_runnable(&foreign, tmp.path()).unwrap_err();
            assert!(
                err.contains("\"qemu-aarch64\"") && err.contains("F (fix binary)"),
                "{err}"
            );
            fs_err::write(tmp.path().join("qemu-aarch64"), QEMU_AARCH64).unwrap();
            check_runnable(&foreign, tmp.path()).unwrap();
            // It does not run s390x.
            let s390x: Platform = "linux/s390x".parse().unwrap();
            assert!(check_runnable(&s390x, tmp.path()).is_err());
        }
        let windows: Platform = "windows/amd64".parse().unwrap();
        assert!(
            check_runnable(&windows, tmp.path())
                .unwrap_err()
                .contains("not a Linux")
        );
    }
}
