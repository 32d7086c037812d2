#!/usr/bin/env bash
# Runs every test: Rust (unit + integration against the real registry, Docker and podman),
# the Python SDK and server suite, and the linters. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

echo "== lint"
cargo fmt --all --check
cargo clippy --workspace --all-targets --exclude coglet-python -- -D warnings

echo "== wheels"
# The cog SDK and coglet wheels go into every image the tests build (dist/, see README).
bash python/build-wheels.sh

echo "== newcomer path (README's first command, then cog run in the example)"
bash scripts/newcomer.sh

echo "== release (the x86_64 cog binary and cog-rs wheel, both architectures' coglet inside)"
# Then as a new user gets them: the binary alone with a fresh HOME builds and runs
# examples/hello, an arm64 image holds an aarch64 coglet and answers under qemu, and the wheel
# installs a working cog into a fresh venv (scripts/release-check.sh).
RELEASE_ARCHES=x86_64 bash scripts/release.sh
bash scripts/release-check.sh

echo "== rust tests"
# Test builds stay in their own caches; tests/engine_load.rs checks loading into the engines.
export COG_NO_LOAD=1
cargo nextest run --workspace --exclude coglet-python --no-fail-fast

echo "== python tests"
COG_TEST_WHEELS="$PWD/dist" bash python/tests/run.sh
