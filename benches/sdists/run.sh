#!/usr/bin/env bash
# Five sdist-only packages (no wheel on PyPI), resolved, built from source and layered:
# `cog build` (the Python layers: resolution, PEP 517 builds in the image's environment in the
# sandbox, gzip layers) side by side with `uv pip install --target` + `tar | pigz`, in
# ROUNDS (default 3) interleaved rounds, medians printed as markdown.
#   benches/sdists/run.sh                 # builds target/release/cog first
#   SKIP_BUILD=1 ROUNDS=5 benches/sdists/run.sh
# Cold: empty package caches (ours: the wheels cache and the lock removed; the base image and
# the Python-independent layers stay in the store, as they do on any second project). uv: a
# fresh --cache-dir. Warm: the package caches kept, the lock removed (ours resolves again and
# finds the built wheels), a new target directory and tarball for uv.
# Needs runc (root or newuidmap), uv (installed into /tmp/cog-test-uv when absent), pigz, and
# PyPI and the Debian archive (COG_CA_CERT is set from /usr/local/share/ca-certificates when it
# has certificates).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
UV=${COG_TEST_UV:-/tmp/cog-test-uv/bin/uv}
if [ ! -x "$UV" ]; then
  python3 -m venv /tmp/cog-test-uv && /tmp/cog-test-uv/bin/pip install -q uv
  UV=/tmp/cog-test-uv/bin/uv
fi
command -v pigz >/dev/null || { echo "pigz is required (apt-get install pigz)" >&2; exit 1; }
[ -n "${SKIP_BUILD:-}" ] || (cd "$ROOT" && cargo build -q --release --bin cog)
COG=${COG:-${CARGO_TARGET_DIR:-$ROOT/target}/release/cog}
ROUNDS=${ROUNDS:-3}
WORK=$(mktemp -d /tmp/sdists-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  export COG_CA_CERT=/usr/local/share/ca-certificates
fi
unset PIP_FIND_LINKS SOURCE_DATE_EPOCH
PACKAGES="fire==0.6.0 docopt==0.6.2 progressbar==2.5 antlr4-python3-runtime==4.9.3 iopath==0.1.10"
INDEX=${PIP_INDEX_URL:-https://pypi.org/simple/}

PROJECT=$WORK/project
mkdir -p "$PROJECT"
printf 'build:\n  python_version: "3.11"\n  python_requirements: requirements.txt\n' > "$PROJECT/cog.yaml"
printf '%s\n' $PACKAGES > "$PROJECT/requirements.txt"
export COG_CACHE_DIR=$WORK/cog

secs() {
  local start end
  start=$(date +%s.%N)
  if ! "$@" >"$WORK/out" 2>&1; then echo "FAILED: $*" >&2; tail -40 "$WORK/out" >&2; exit 1; fi
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
}
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
ours() {
  rm -f "$PROJECT/cog-requirements.lock.json"
  (cd "$PROJECT" && "$COG" build -t sdists-bench --progress plain)
}
ours_cold() { rm -rf "$COG_CACHE_DIR/wheels"; ours; }
uv_install() {
  rm -rf "$WORK/target" && "$UV" pip install -q --cache-dir "$1" --python-version 3.11 \
      --python-platform x86_64-manylinux_2_28 --index-url "$INDEX" --target "$WORK/target" $PACKAGES \
    && tar -C "$WORK/target" -cf - . | pigz -6 > "$WORK/target.tar.gz"
}

# The base and everything else in the store first (not measured).
secs ours >/dev/null
oc=(); vc=(); ow=(); vw=()
for _ in $(seq "$ROUNDS"); do
  rm -rf "$WORK/uv-cache"
  oc+=("$(secs ours_cold)")
  vc+=("$(secs uv_install "$WORK/uv-cache")")
  ow+=("$(secs ours)")
  vw+=("$(secs uv_install "$WORK/uv-cache")")
done
echo "### Five sdist-only packages: resolve + build + layer (seconds, median of $ROUNDS interleaved rounds)"
echo
echo "\`$PACKAGES\`, Python 3.11, x86_64; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| | ours (cog build) | uv pip install --target + tar \| pigz | ratio |"
echo "|---|---|---|---|"
mc=$(median "${oc[@]}"); mv=$(median "${vc[@]}")
mw=$(median "${ow[@]}"); mvw=$(median "${vw[@]}")
echo "| cold | $mc | $mv | $(ratio "$mc" "$mv") |"
echo "| warm | $mw | $mvw | $(ratio "$mw" "$mvw") |"
echo
echo "rounds: ours cold ${oc[*]}; uv cold ${vc[*]}; ours warm ${ow[*]}; uv warm ${vw[*]}"
