#!/usr/bin/env bash
# Installs what the build and the test suite need on a fresh Debian/Ubuntu machine (as root).
# Idempotent and quick when everything is already there.
set -euo pipefail

APT_PACKAGES=(
  # the real registry, image tools and runtimes the integration tests check our images with
  docker-registry skopeo umoci podman runc buildah uidmap slirp4netns fuse-overlayfs
  containernetworking-plugins iptables
  # a tiny static userland for test base images, and peers for the benchmarks
  busybox-static pigz zstd xz-utils wrk debootstrap hyperfine
  # htpasswd for registry auth tests, jq for scripts
  apache2-utils jq curl ca-certificates git
  # /usr/bin/time for the peak-memory checks (tests/large_files.rs)
  time
  # scripts/release-check.sh: a fresh venv for the cog-rs wheel, and arm64 images run under
  # emulation (qemu through binfmt_misc)
  python3-venv qemu-user-static binfmt-support
)

# binfmt_misc must be mounted before qemu-user-static is installed: its postinst registers
# qemu-aarch64 there (a container may start without it; mounting needs privileges).
if [[ ! -e /proc/sys/fs/binfmt_misc/status ]]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null ||
    echo "install-deps: cannot mount binfmt_misc: arm64 images will not run under emulation" >&2
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# qemu-user-static installed before binfmt_misc was mounted: register it now.
if [[ -e /proc/sys/fs/binfmt_misc/status && ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] &&
  command -v update-binfmts >/dev/null; then
  update-binfmts --enable qemu-aarch64 2>/dev/null || update-binfmts --import qemu-aarch64 || true
fi

# podman as root on these machines: runc (crun fails), ulimits within the hard limits, no systemd.
if [[ ! -f /etc/containers/containers.conf ]] || ! grep -q 'runtime = "runc"' /etc/containers/containers.conf; then
  NOFILE="$(ulimit -Hn)"; NPROC="$(cat /proc/sys/kernel/pid_max)"
  mkdir -p /etc/containers
  cat > /etc/containers/containers.conf <<CONF
[containers]
default_ulimits = ["nofile=${NOFILE}:${NOFILE}", "nproc=${NPROC}:${NPROC}"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
fi

if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi

# scripts/release.sh cross-builds the aarch64 coglet (and cog) with zig: Rust's aarch64 std.
if command -v rustup >/dev/null 2>&1 &&
  ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  rustup target add aarch64-unknown-linux-gnu
fi
