#!/usr/bin/env bash
# Builds the two wheels that go into images: the `cog` SDK and the `coglet` server.
#   bash python/build-wheels.sh [OUT_DIR]      (default: dist/ at the repository root)
# Env: COGLET_TARGET=<rust target triple> to cross-build the coglet wheel (e.g. aarch64-unknown-linux-gnu),
#      COG_BUILD_VENV (default /tmp/venv-cog-build), PYTHON (default python3).
# The coglet wheel is manylinux2014 (glibc >= 2.17) thanks to zig, so it installs on any image.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$(mkdir -p "${1:-$ROOT/dist}" && cd "${1:-$ROOT/dist}" && pwd)
VENV=${COG_BUILD_VENV:-/tmp/venv-cog-build}
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/maturin" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q "maturin>=1.5,<2" ziglang build
fi

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml")
sdk_version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/python/pyproject.toml")
if [ "$version" != "$sdk_version" ]; then
  echo "python/pyproject.toml version $sdk_version differs from the workspace version $version" >&2
  exit 1
fi

# Build into a fresh directory, then move into OUT: OUT never holds a half-written wheel.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

target_args=()
if [ -n "${COGLET_TARGET:-}" ]; then
  target_args=(--target "$COGLET_TARGET")
fi
# maturin runs zig as `python3 -m ziglang`: the build venv must come first on PATH.
PATH="$VENV/bin:$PATH" "$VENV/bin/maturin" build --release --zig --compatibility manylinux2014 \
  "${target_args[@]}" -m "$ROOT/coglet/python/Cargo.toml" -o "$stage"
"$VENV/bin/python" -m build --wheel --outdir "$stage" "$ROOT/python" >/dev/null
rm -rf "$ROOT/python/build"

for wheel in "$stage"/*.whl; do
  mv -f "$wheel" "$OUT/"
  echo "$OUT/$(basename "$wheel")"
done
