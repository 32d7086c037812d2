#!/usr/bin/env bash
# CI entry point for the Python side: builds both wheels, installs them into a fresh venv and
# runs ruff and the pytest suite (SDK unit tests, worker IPC tests, HTTP end-to-end tests).
#   bash python/tests/run.sh [pytest args...]
# Needs: python3 (3.10+) with venv, a Rust toolchain, network access to PyPI.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${COG_TEST_VENV:-/tmp/venv-cog-test}
PYTHON=${PYTHON:-python3}
# COG_TEST_WHEELS=DIR reuses wheels built already (scripts/test-all.sh builds dist/ once).
if [[ -n "${COG_TEST_WHEELS:-}" ]]; then
  WHEELS=$COG_TEST_WHEELS
else
  WHEELS=$(mktemp -d)
  trap 'rm -rf "$WHEELS"' EXIT
  bash "$ROOT/python/build-wheels.sh" "$WHEELS"
fi

rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q pytest requests ruff pydantic
"$VENV/bin/pip" install -q --no-deps "$WHEELS"/cog-*.whl "$WHEELS"/coglet-*.whl

"$VENV/bin/ruff" check "$ROOT/python" "$ROOT/coglet/python"
"$VENV/bin/ruff" format --check "$ROOT/python" "$ROOT/coglet/python"
# scripts/ has no pyproject of its own: lint it with the SDK's settings.
"$VENV/bin/ruff" check --config "$ROOT/python/pyproject.toml" "$ROOT/scripts"
"$VENV/bin/ruff" format --check --config "$ROOT/python/pyproject.toml" "$ROOT/scripts"

# Run from a directory outside the source tree so that `import cog` is the installed wheel.
cd "$ROOT/python/tests"
exec "$VENV/bin/python" -m pytest -p no:cacheprovider --rootdir "$ROOT/python/tests" "$@" "$ROOT/python/tests"
