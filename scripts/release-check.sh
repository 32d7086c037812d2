#!/usr/bin/env bash
# Checks the release artifacts of scripts/release.sh as a new user gets them (CI runs it):
#  1. the `cog` binary of this machine's architecture, alone in an empty directory outside the
#     repository, with a fresh HOME (empty cache) and no dist/ anywhere, builds examples/hello
#     and `cog run` answers, with the wheels it carries;
#  2. the arm64 image of examples/hello holds an aarch64 coglet (ELF header checked) and, when
#     the kernel runs aarch64 programs through qemu (binfmt_misc, Debian's qemu-user-static),
#     answers a prediction under emulation;
#  3. `pip install` of the `cog-rs` wheel into a fresh venv gives a `cog` that works.
#   bash scripts/release-check.sh [RELEASE_DIR]      (default dist/release)
# Env: COG_RELEASE_CHECK_EMULATION=0 skips the prediction under emulation (2, second half).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REL=$(cd "${1:-$ROOT/dist/release}" && pwd)
arch=$(uname -m)
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml")
PYTHON=${PYTHON:-python3}

# Outside the repository, so that no dist/ is above it; removed at the end (the runc rootfs
# may hold files of subordinate ids: removed by `cog cache prune` first).
work=$(mktemp -d /tmp/cog-release-check.XXXXXX)
cleanup() {
  HOME=$work/home "$work/bin/cog" cache prune --all >/dev/null 2>&1 || true
  for engine in docker podman; do
    command -v "$engine" >/dev/null &&
      "$engine" rmi -f cog-release-check-hello cog-release-check-hello-arm64 >/dev/null 2>&1 || true
  done
  rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT
mkdir -p "$work/bin" "$work/home" "$work/hello"
cp "$REL/cog_Linux_$arch" "$work/bin/cog"
(cd "$ROOT" && git ls-files -z examples/hello | xargs -0 -I{} cp {} "$work/hello/")
cd "$work/hello"

# What a new user has: none of the variables the tests use.
unset COG_SDK_WHEEL COGLET_WHEEL COG_CACHE_DIR XDG_CACHE_HOME COG_NO_LOAD COG_RUNTIME
export HOME=$work/home
cog=$work/bin/cog
say() { echo "release-check: $*"; }
fail() { echo "release-check: $*" >&2; exit 1; }

"$cog" --version
"$cog" --version | grep -q "coglet $version (.*_$arch" || fail "cog --version lists no coglet for $arch"

# 1. Build and run the example with the binary alone.
start=$SECONDS
"$cog" build -t cog-release-check-hello --progress plain >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; fail "cog build failed"; }
out=$("$cog" run -i text=release 2>"$work/run.log") || { cat "$work/run.log" >&2; fail "cog run failed"; }
[[ "$out" == "hello release" ]] || fail "cog run printed ${out@Q}"
# The wheels came from the binary: written into the (fresh) store under their sha256.
ls "$HOME"/.cache/cog/runtime-wheels/*/"coglet-$version-"*"_$arch.whl" >/dev/null ||
  fail "no embedded coglet was written into the store"
say "1. the binary alone: cog build + cog run -> $out ($((SECONDS - start)) s, cold cache)"

# 2. The arm64 image: an aarch64 coglet inside, and a prediction where qemu runs it.
start=$SECONDS
"$cog" build -t cog-release-check-hello-arm64 --platform linux/arm64 --output "$work/hello-arm64.tar" \
  --progress plain >"$work/build-arm64.log" 2>&1 || { cat "$work/build-arm64.log" >&2; fail "cog build --platform linux/arm64 failed"; }
"$PYTHON" - "$work/hello-arm64.tar" <<'PY'
import io, sys, tarfile
# Every layer of the image tarball is searched for coglet's extension module; its ELF header
# must say aarch64 (e_machine 0xb7 at offset 18, little-endian).
found = []
with tarfile.open(sys.argv[1]) as image:
    for blob in image.getmembers():
        if not blob.isfile() or blob.size < 512:
            continue
        data = image.extractfile(blob).read()
        try:
            layer = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
        except tarfile.TarError:
            continue
        with layer:
            for m in layer.getmembers():
                name = m.name
                if m.isfile() and "/coglet/" in name and ".so" in name.rsplit("/", 1)[-1]:
                    head = layer.extractfile(m).read(20)
                    found.append((name, head))
if not found:
    sys.exit("release-check: no coglet extension module in the arm64 image")
for name, head in found:
    machine = int.from_bytes(head[18:20], "little")
    if head[:4] != b"\x7fELF" or machine != 0xB7:
        sys.exit(f"release-check: {name}: ELF machine {machine:#x}, not aarch64 (0xb7)")
    print(f"release-check: 2. arm64 image: {name} is an aarch64 ELF")
PY
emulation=/proc/sys/fs/binfmt_misc/qemu-aarch64
if [[ ${COG_RELEASE_CHECK_EMULATION:-1} == 0 ]]; then
  say "2. prediction under emulation: skipped (COG_RELEASE_CHECK_EMULATION=0)"
elif [[ "$arch" != aarch64 && ! -e /proc/sys/fs/binfmt_misc/status ]]; then
  # The kernel has no binfmt_misc here, or install-deps.sh could not mount it: no emulator can
  # work on this machine (the issue asks for the prediction where qemu and binfmt work). Said
  # loudly; a registered but failing emulator still fails below.
  say "2. prediction under emulation: NOT RUN: this machine has no binfmt_misc (the ELF check above still ran)"
elif [[ "$arch" == aarch64 ]] || grep -q '^enabled' "$emulation" 2>/dev/null; then
  out=$("$cog" run cog-release-check-hello-arm64 -i text=arm64 --runtime runc 2>"$work/run-arm64.log") ||
    { cat "$work/run-arm64.log" >&2; fail "cog run of the arm64 image failed"; }
  [[ "$out" == "hello arm64" ]] || fail "cog run (arm64) printed ${out@Q}"
  say "2. arm64 image: cog run under emulation -> $out ($((SECONDS - start)) s)"
else
  fail "no qemu-aarch64 in binfmt_misc ($emulation): scripts/install-deps.sh sets it up (COG_RELEASE_CHECK_EMULATION=0 skips this)"
fi

# 3. The Python wheel: pip install into a fresh venv, then the same project with its `cog`.
start=$SECONDS
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/pip" install -q --no-index "$REL"/cog_rs-"$version"-*"$arch".whl
"$work/venv/bin/cog" --version | grep -q "coglet $version" || fail "the cog of the cog-rs wheel lists no coglet"
cmp -s "$work/venv/bin/cog" "$cog" || fail "the wheel's cog differs from cog_Linux_$arch"
out=$("$work/venv/bin/cog" run -i text=pip 2>"$work/run-pip.log") || { cat "$work/run-pip.log" >&2; fail "cog run (pip) failed"; }
[[ "$out" == "hello pip" ]] || fail "cog run (pip) printed ${out@Q}"
say "3. pip install cog-rs: cog run -> $out ($((SECONDS - start)) s)"
