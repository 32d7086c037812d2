#!/usr/bin/env bash
# The schema's runtime path (issue 17): what it adds to a cold build, and a code-only rebuild.
# Two projects, the same predictor: "runtime" computes its choices from a table of classes
# (`choices=list(SCHEDULERS.keys())`, which only importing the module answers: the runtime
# path), "static" writes the same choices as a literal list (the static path). Each round
# builds both cold, interleaved: a new module-level line in predict.py (so the source layer
# and the answers are new) and the sandbox's unpacked layers and the answers cache removed;
# the base, the Python layers and everything else stay in the store, as on any second
# project. Then a code-only rebuild of "runtime" (an edit inside predict()'s body).
#   benches/schema_runtime/run.sh [rounds]     (default 3; needs runc or root, and dist/ wheels)
#   SKIP_BUILD=1 COG=target/release/cog benches/schema_runtime/run.sh 5
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-3}
[ -n "${SKIP_BUILD:-}" ] || (cd "$ROOT" && cargo build -q --release --bin cog)
COG=${COG:-${CARGO_TARGET_DIR:-$ROOT/target}/release/cog}
WORK=$(mktemp -d /tmp/schema-runtime-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export COG_CACHE_DIR=$WORK/cache
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  export COG_CA_CERT=/usr/local/share/ca-certificates
fi

FIXTURE=$ROOT/tests/schema_fixtures/runtime/schedulers_dict
cp -r "$FIXTURE" "$WORK/runtime"
cp -r "$FIXTURE" "$WORK/static"
choices=$(cd "$FIXTURE" && python3 -c 'import schedulers; print([c.__name__ for c in schedulers.ALL])')
sed -i "s/choices=list(SCHEDULERS.keys())/choices=$choices/" "$WORK/static/predict.py"
grep -q "choices=\[" "$WORK/static/predict.py"

secs() {
  local start end
  start=$(date +%s.%N)
  if ! "$@" >"$WORK/out" 2>&1; then echo "FAILED: $*" >&2; tail -40 "$WORK/out" >&2; exit 1; fi
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
build() { (cd "$WORK/$1" && "$COG" build --no-load --progress plain); }
cold() {
  echo "MARK = \"$(date +%s%N)\"" >> "$WORK/$1/predict.py"
  # Moved aside, not deleted: ext4 then allocates inodes slowly for a few seconds (it skips
  # recently freed ones), which would charge the deletion to the build.
  local trash
  trash=$(mktemp -d "$WORK/trash.XXXXXX")
  mv "$COG_CACHE_DIR/sandbox" "$COG_CACHE_DIR/schema-runtime" "$trash/" 2>/dev/null || true
  build "$1"
}
code_only() {
  sed -i "s/steps = SCHEDULERS\[scheduler\].steps.*/steps = SCHEDULERS[scheduler].steps  # $(date +%s%N)/" \
    "$WORK/runtime/predict.py"
  build runtime
}

# The base, the Python layers and the rest in the store first (not measured).
secs build static >/dev/null
secs build runtime >/dev/null
rt=(); st=(); co=(); imported=()
for _ in $(seq "$ROUNDS"); do
  rt+=("$(secs cold runtime)")
  imported+=("$(grep -o 'imported in the image for [0-9]* value(s) in [0-9.]*s' "$WORK/out" | awk '{print $NF}')")
  co+=("$(secs code_only)")
  grep -q "read from the predictor in the image (cached)" "$WORK/out" \
    || { echo "the code-only rebuild did not reuse the answers" >&2; cat "$WORK/out" >&2; exit 1; }
  st+=("$(secs cold static)")
done
mr=$(median "${rt[@]}"); ms=$(median "${st[@]}"); mc=$(median "${co[@]}")
echo "### Schema runtime path (median of $ROUNDS interleaved rounds; load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| build | seconds |"
echo "|---|---|"
echo "| cold, runtime path | $mr |"
echo "| cold, static path (same schema, literal choices) | $ms |"
echo "| added by the runtime path | $(awk -v a="$mr" -v b="$ms" 'BEGIN { printf "%.3f", a - b }') (goal < 1 s) |"
echo "| code-only rebuild, runtime path (answers reused) | $mc (goal <= 0.3 s) |"
echo
echo "rounds: runtime ${rt[*]}; static ${st[*]}; code-only ${co[*]}; import step ${imported[*]}"
