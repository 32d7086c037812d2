#!/usr/bin/env bash
# Side-by-side timings of the wheels crate and uv (one run each), printed as markdown.
#   benches/wheels/run.sh            # all requirement sets in tests/wheels/requirements/
#   SETS="numpy-pillow fastapi" benches/wheels/run.sh
# Resolution: `examples/resolve` vs `uv pip compile`, cold (empty caches) then warm.
# Install: `examples/install` (resolve + gzip layers) vs `uv pip install --target` + `tar | pigz`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REQS=$ROOT/tests/wheels/requirements
UV=${COG_TEST_UV:-/tmp/cog-test-uv/bin/uv}
if [ ! -x "$UV" ]; then
  python3 -m venv /tmp/cog-test-uv && /tmp/cog-test-uv/bin/pip install -q uv
  UV=/tmp/cog-test-uv/bin/uv
fi
command -v pigz >/dev/null || { echo "pigz is required (apt-get install pigz)" >&2; exit 1; }
(cd "$ROOT" && cargo build -q --release -p wheels --examples)
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
echo "### Resolution + layers: $set (seconds, one run)"
echo
echo "| case | ours (resolve + gzip layers) | uv install --target + tar \| pigz | ratio |"
echo "|---|---|---|---|"
uv_install() {
  rm -rf "$WORK/target" && "$UV" pip install -q --cache-dir "$1" "${UVARGS[@]}" --target "$WORK/target" -r "$f" \
    && tar -C "$WORK/target" -cf - . | pigz > "$WORK/target.tar.gz"
}
oc=$(WHEELS_CACHE_DIR=$WORK/inst-ours secs "$BIN/install" "$f" 3.11 "$WORK/store1")
vc=$(secs uv_install "$WORK/inst-uv")
echo "| cold caches | $oc | $vc | $(ratio "$oc" "$vc") |"
ow=$(WHEELS_CACHE_DIR=$WORK/inst-ours secs "$BIN/install" "$f" 3.11 "$WORK/store2")
vw=$(secs uv_install "$WORK/inst-uv")
echo "| warm download caches, new layers | $ow | $vw | $(ratio "$ow" "$vw") |"
ok=$(WHEELS_CACHE_DIR=$WORK/inst-ours secs "$BIN/install" "$f" 3.11 "$WORK/store2")
echo "| warm, layers already in the store | $ok | $vw | $(ratio "$ok" "$vw") |"
