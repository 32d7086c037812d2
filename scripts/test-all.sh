#!/usr/bin/env bash
# Runs every test: Rust (unit + integration against the real registry, Docker and podman),
# the Python SDK and server suite, and the linters. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

echo "== lint"
cargo fmt --all --check
cargo clippy --workspace --all-targets --exclude coglet-python -- -D warnings

echo "== rust tests"
cargo nextest run --workspace --exclude coglet-python --no-fail-fast

if [[ -x python/tests/run.sh ]]; then
  echo "== python tests"
  bash python/tests/run.sh
fi
