#!/usr/bin/env bash
# Runs upstream Cog's own test suites against this tree and writes docs/compatibility.md.
#   bash scripts/upstream-suite.sh UPSTREAM_CHECKOUT [OUTPUT.md]
#
# UPSTREAM_CHECKOUT is a checkout of github:replicate/cog kept OUTSIDE this repository. Its
# tests are copied into a temporary directory and run there, unchanged; nothing of it is
# written into this tree except the results table.
#   - python/tests (the SDK suite) and crates/coglet-python/tests/test_coglet.py run with
#     pytest against this tree's wheels, installed with the `cog` wheel's dependencies.
#   - integration-tests/tests/*.txtar are listed and classified, not run (see the report).
#
# Env: COG_TEST_WHEELS=DIR reuses wheels built already (else python/build-wheels.sh builds
#      them), UPSTREAM_REV names the upstream revision when the checkout has no .git,
#      PYTHON (default python3, 3.10+), PYTEST_TIMEOUT (per test, default 300 s).
# Needs: network access to PyPI (pytest, and the `cog` wheel's dependencies).
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  sed -n '2,3p' "$0" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
UPSTREAM=$(cd "$1" && pwd)
OUT=${2:-$ROOT/docs/compatibility.md}
PYTHON=${PYTHON:-python3}

for required in python/tests crates/coglet-python/tests/test_coglet.py integration-tests/tests; do
  if [[ ! -e "$UPSTREAM/$required" ]]; then
    echo "upstream-suite: $UPSTREAM/$required not found: is $UPSTREAM a checkout of replicate/cog?" >&2
    exit 1
  fi
done
case "$UPSTREAM/" in
  "$ROOT"/*)
    echo "upstream-suite: keep the upstream checkout outside this repository ($ROOT)" >&2
    exit 1
    ;;
esac

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [[ -n "${COG_TEST_WHEELS:-}" ]]; then
  WHEELS=$(cd "$COG_TEST_WHEELS" && pwd)
else
  WHEELS=$WORK/wheels
  bash "$ROOT/python/build-wheels.sh" "$WHEELS" >/dev/null
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/python/pyproject.toml")
sdk_wheel=$(ls "$WHEELS"/cog-"$version"-*.whl)
coglet_wheel=$(ls "$WHEELS"/coglet-"$version"-*.whl)

echo "== venv (this tree's wheels, with the cog wheel's dependencies)"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --upgrade pip
"$WORK/venv/bin/pip" install -q pytest pytest-timeout requests
# Installed like `pip install cog`: its declared dependencies come from PyPI, coglet from here.
"$WORK/venv/bin/pip" install -q "$coglet_wheel" "$sdk_wheel"

# Copies of upstream's tests, outside both trees: `import cog` must be the installed wheel.
mkdir -p "$WORK/sdk" "$WORK/coglet"
cp -r "$UPSTREAM/python/tests" "$WORK/sdk/tests"
cp "$UPSTREAM/crates/coglet-python/tests/test_coglet.py" "$WORK/coglet/"

run_suite() {
  local name=$1 dir=$2 target=$3
  echo "== $name"
  # A failing suite is a result to record, not a reason to stop.
  # --continue-on-collection-errors: a module that cannot be imported is a result of its own.
  (cd "$dir" && "$WORK/venv/bin/python" -m pytest -p no:cacheprovider -q --continue-on-collection-errors \
    --timeout "${PYTEST_TIMEOUT:-300}" --junitxml "$WORK/$name.xml" "$target") || true
}
run_suite sdk "$WORK/sdk" tests
run_suite coglet "$WORK/coglet" test_coglet.py

upstream_rev=${UPSTREAM_REV:-$(git -C "$UPSTREAM" rev-parse HEAD 2>/dev/null || true)}
if [[ -z "$upstream_rev" && -f "$UPSTREAM/VERSION.txt" ]]; then
  upstream_rev="VERSION.txt $(cat "$UPSTREAM/VERSION.txt")"
fi
tree_rev=$(git -C "$ROOT" rev-parse --short HEAD)
if [[ -n "$(git -C "$ROOT" status --porcelain)" ]]; then
  tree_rev="$tree_rev (with uncommitted changes)"
fi

"$PYTHON" "$ROOT/scripts/upstream_suite_report.py" \
  --junit "python/tests (SDK)=$WORK/sdk.xml" \
  --source "python/tests (SDK)=$UPSTREAM/python/tests" \
  --junit "crates/coglet-python/tests/test_coglet.py=$WORK/coglet.xml" \
  --txtar-dir "$UPSTREAM/integration-tests/tests" \
  --upstream "replicate/cog ${upstream_rev:-unknown revision}" \
  --tree "$tree_rev" \
  --out "$OUT"
echo "wrote $OUT"
