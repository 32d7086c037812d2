#!/usr/bin/env bash
# Builds the release artifacts of cog-rs into OUT (default dist/release/):
#   wheels/                            the cog SDK wheel and the coglet wheels (x86_64, aarch64)
#                                      that every `cog` binary below carries inside
#   cog_Linux_<arch>                   the `cog` binary (Linux, glibc >= 2.17 through zig), named
#                                      as Cog names its release binaries
#   cog-<version>-linux-<arch>.tar.gz  the same binary with the README
#   cog_rs-<version>-py3-none-manylinux_2_17_<arch>.whl
#                                      the binary as the Python wheel `cog-rs` (maturin,
#                                      bindings = "bin"): pip/pipx/uv tool install give `cog`
#   SHA256SUMS                         sha256 of every file above
#
#   bash scripts/release.sh [OUT]
# Env: RELEASE_ARCHES (default "x86_64 aarch64"): the architectures of the `cog` binaries. The
#      coglet wheels of both architectures are built and embedded either way, so that every
#      binary builds linux/amd64 and linux/arm64 images.
#      COG_BUILD_VENV, PYTHON: as for python/build-wheels.sh (maturin and ziglang come from it).
#      SOURCE_DATE_EPOCH: the tarballs' file times (default: the last commit's time).
# macOS binaries are not built: see docs/release.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$(mkdir -p "${1:-$ROOT/dist/release}" && cd "${1:-$ROOT/dist/release}" && pwd)
ARCHES=${RELEASE_ARCHES:-x86_64 aarch64}
VENV=${COG_BUILD_VENV:-/tmp/venv-cog-build}
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml")
# For the tarballs only: exported, it would change the C crates' build (cc reads it) and
# recompile what python/build-wheels.sh and `cargo build --release` already built.
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}

for arch in $ARCHES; do
  case $arch in
    x86_64 | aarch64) ;;
    *) echo "release: RELEASE_ARCHES: unknown architecture $arch (x86_64, aarch64)" >&2; exit 1 ;;
  esac
done

step() { echo "release: $* ($(date -u +%H:%M:%S))"; }

# 1. The wheels every binary carries: the SDK and a coglet per architecture (manylinux2014).
wheels=$OUT/wheels
rm -rf "$wheels"
mkdir -p "$wheels"
for arch in x86_64 aarch64; do
  step "wheels: cog SDK and coglet $arch"
  # The host's coglet is built as python/build-wheels.sh builds it for dist/ (same cargo
  # output, so CI compiles it once); the other architecture is cross-built.
  if [[ $arch == "$(uname -m)" ]]; then
    bash "$ROOT/python/build-wheels.sh" "$wheels" >/dev/null
  else
    COGLET_TARGET=$arch-unknown-linux-gnu bash "$ROOT/python/build-wheels.sh" "$wheels" >/dev/null
  fi
done
ls "$wheels"

# 2. Per architecture: the `cog-rs` wheel (maturin builds the binary with zig, for glibc 2.17,
#    with the wheels above inside), and the binary taken out of it for the tarball.
rm -f "$OUT"/cog_Linux_* "$OUT"/cog-*-linux-*.tar.gz "$OUT"/cog_rs-*.whl "$OUT/SHA256SUMS"
for arch in $ARCHES; do
  triple=$arch-unknown-linux-gnu
  stage=$(mktemp -d)
  step "cog $arch: maturin build --zig --target $triple"
  # LZMA_API_STATIC: liblzma compiled in (lzma-sys), not the build host's (newer glibc).
  (cd "$ROOT/packaging/cog-rs" &&
    COG_EMBED_WHEELS_DIR=$wheels LZMA_API_STATIC=1 PATH="$VENV/bin:$PATH" "$VENV/bin/maturin" build --release --zig \
      --compatibility manylinux2014 --target "$triple" --out "$stage")
  wheel=$(ls "$stage"/cog_rs-"$version"-*.whl)
  bin=$OUT/cog_Linux_$arch
  "$VENV/bin/python" - "$wheel" "$bin" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    [name] = [n for n in z.namelist() if n.endswith(".data/scripts/cog")]
    with z.open(name) as src, open(out, "wb") as dst:
        dst.write(src.read())
PY
  chmod 755 "$bin"
  # The ELF header names the machine: 0x3e x86-64, 0xb7 aarch64.
  machine=$(od -An -tx1 -j18 -N1 "$bin" | tr -d ' ')
  case $arch:$machine in
    x86_64:3e | aarch64:b7) ;;
    *) echo "release: $bin: ELF machine 0x$machine is not $arch" >&2; exit 1 ;;
  esac
  if [[ $arch == "$(uname -m)" ]]; then
    "$bin" --version
    "$bin" --version | grep -q "coglet $version (.*aarch64" || { echo "release: $bin carries no aarch64 coglet" >&2; exit 1; }
    "$bin" --version | grep -q "coglet $version (.*x86_64" || { echo "release: $bin carries no x86_64 coglet" >&2; exit 1; }
  fi
  mv "$wheel" "$OUT/"
  name=cog-$version-linux-$arch
  mkdir -p "$stage/$name"
  cp "$bin" "$stage/$name/cog"
  cp "$ROOT/README.md" "$stage/$name/README.md"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    -C "$stage" -cf - "$name" | gzip -9n >"$OUT/$name.tar.gz"
  rm -rf "$stage"
done

# 3. The checksums.
(cd "$OUT" && sha256sum cog_Linux_* cog-*-linux-*.tar.gz cog_rs-*.whl wheels/*.whl >SHA256SUMS)
step "done: $OUT"
(cd "$OUT" && ls -l cog_Linux_* cog-*-linux-*.tar.gz cog_rs-*.whl && cat SHA256SUMS)
