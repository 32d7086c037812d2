#!/usr/bin/env bash
# Side-by-side timings of the wheels crate and uv (one run each), printed as markdown.
#   benches/wheels/run.sh            # all requirement sets in tests/wheels/requirements/
#   SETS="numpy-pillow fastapi" benches/wheels/run.sh
#   SKIP_BUILD=1 benches/wheels/run.sh   # examples already built with --release
# Resolution: `examples/resolve` vs `uv pip compile`, cold (empty caches) then warm.
# Install: `examples/install` (resolve + gzip layers) vs `uv pip install --target` + `tar | pigz`,
# ROUNDS (default 3) interleaved rounds, median reported.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REQS=$ROOT/tests/wheels/requirements
UV=${COG_TEST_UV:-/tmp/cog-test-uv/bin/uv}
if [ ! -x "$UV" ]; then
  python3 -m venv /tmp/cog-test-uv && /tmp/cog-test-uv/bin/pip install -q uv
  UV=/tmp/cog-test-uv/bin/uv
fi
command -v pigz >/dev/null || { echo "pigz is required (apt-get install pigz)" >&2; exit 1; }
# SKIP_BUILD=1 uses the examples already built (cargo would wait for a busy target dir).
[ -n "${SKIP_BUILD:-}" ] || (cd "$ROOT" && cargo build -q --release -p wheels --examples)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples
WORK=$(mktemp -d /tmp/wheels-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
INDEX=${PIP_INDEX_URL:-https://pypi.org/simple/}
UVARGS=(--python-version 3.11 --python-platform x86_64-manylinux_2_28 --index-url "$INDEX")

# Seconds taken by a command (its output discarded); fails loudly.
secs() {
  local start end
  start=$(date +%s.%N)
  if ! "$@" >"$WORK/out" 2>&1; then echo "FAILED: $*" >&2; cat "$WORK/out" >&2; exit 1; fi
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
sum() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a + b }'; }

SETS=${SETS:-$(cd "$REQS" && ls ./*.txt | sed 's|^\./||; s|\.txt$||' | grep -v '^numpy-pillow-transformers$')}
echo "### Resolution (python 3.11, x86_64 manylinux_2_28; seconds, one run)"
echo
echo "| set | ours cold | uv cold | ratio | ours warm | uv warm | ratio |"
echo "|---|---|---|---|---|---|---|"
tc=0; uc=0; tw=0; uw=0
for set in $SETS; do
  f=$REQS/$set.txt
  oc=$(WHEELS_CACHE_DIR=$WORK/ours-$set secs "$BIN/resolve" "$f" 3.11 x86_64 28)
  ow=$(WHEELS_CACHE_DIR=$WORK/ours-$set secs "$BIN/resolve" "$f" 3.11 x86_64 28)
  vc=$(secs "$UV" pip compile -q --cache-dir "$WORK/uv-$set" "${UVARGS[@]}" "$f")
  vw=$(secs "$UV" pip compile -q --cache-dir "$WORK/uv-$set" "${UVARGS[@]}" "$f")
  echo "| $set | $oc | $vc | $(ratio "$oc" "$vc") | $ow | $vw | $(ratio "$ow" "$vw") |"
  tc=$(sum "$tc" "$oc"); uc=$(sum "$uc" "$vc"); tw=$(sum "$tw" "$ow"); uw=$(sum "$uw" "$vw")
done
echo "| **total** | $tc | $uc | $(ratio "$tc" "$uc") | $tw | $uw | $(ratio "$tw" "$uw") |"
echo

set=numpy-pillow-transformers
f=$REQS/$set.txt
ROUNDS=${ROUNDS:-3}
# Bytes of the gzip layers in a store / of uv's tarball.
store_bytes() { find "$1/blobs" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.1f MB", s / 1e6 }'; }
file_bytes() { stat -c %s "$1" | awk '{ printf "%.1f MB", $1 / 1e6 }'; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
uv_install() {
  local cache=$1 level=$2
  rm -rf "$WORK/target" && "$UV" pip install -q --cache-dir "$cache" "${UVARGS[@]}" --target "$WORK/target" -r "$f" \
    && tar -C "$WORK/target" -cf - . | pigz "-$level" > "$WORK/target.tar.gz"
}
# Each round, interleaved: both tools cold (fresh caches), both warm (download caches kept, new
# layers / new tarball), ours with the layers already in the store.
oc=(); vc=(); ow=(); vw=(); ok=()
for r in $(seq "$ROUNDS"); do
  rm -rf "$WORK"/inst-* "$WORK"/store*
  oc+=("$(WHEELS_CACHE_DIR=$WORK/inst-ours secs "$BIN/install" "$f" 3.11 "$WORK/store1")")
  vc+=("$(secs uv_install "$WORK/inst-uv" 6)")
  ow+=("$(WHEELS_CACHE_DIR=$WORK/inst-ours secs "$BIN/install" "$f" 3.11 "$WORK/store2")")
  vw+=("$(secs uv_install "$WORK/inst-uv" 6)")
  ok+=("$(WHEELS_CACHE_DIR=$WORK/inst-ours secs "$BIN/install" "$f" 3.11 "$WORK/store2")")
done
osize=$(store_bytes "$WORK/store2"); vsize=$(file_bytes "$WORK/target.tar.gz")
echo "### Resolution + layers: $set (seconds, median of $ROUNDS interleaved rounds)"
echo
echo "Ours: resolve + download + gzip layers (wheel members spliced, see below). uv: \`uv pip install --target\` + \`tar | pigz\` (level 6)."
echo
echo "| case | ours | uv + tar \| pigz | ratio | ours runs | uv runs |"
echo "|---|---|---|---|---|---|"
row() {
  local name=$1; shift; local -n a=$1 b=$2
  local m1 m2; m1=$(median "${a[@]}"); m2=$(median "${b[@]}")
  echo "| $name | $m1 | $m2 | $(ratio "$m1" "$m2") | ${a[*]} | ${b[*]} |"
}
row "cold caches" oc vc
row "warm download caches, new layers" ow vw
row "warm, layers already in the store" ok vw
echo
echo "Sizes: ours $osize (gzip layers), uv + pigz -6 $vsize."
echo
echo "### Compressing wheel layers: splice vs recompress (warm download caches, new layers; seconds, one run)"
echo
echo "| ours | time | size | uv + tar \| pigz | time | size |"
echo "|---|---|---|---|---|---|"
for level in 6 1; do
  rw=$(WHEELS_RECOMPRESS=$level WHEELS_CACHE_DIR=$WORK/inst-ours secs "$BIN/install" "$f" 3.11 "$WORK/store-l$level")
  vl=$(secs uv_install "$WORK/inst-uv" "$level")
  echo "| recompressed, gzip -$level | $rw | $(store_bytes "$WORK/store-l$level") | pigz -$level | $vl | $(file_bytes "$WORK/target.tar.gz") |"
done
rm -rf "$WORK/store3"
sw=$(WHEELS_CACHE_DIR=$WORK/inst-ours secs "$BIN/install" "$f" 3.11 "$WORK/store3")
echo "| spliced (default) | $sw | $(store_bytes "$WORK/store3") | | | |"
