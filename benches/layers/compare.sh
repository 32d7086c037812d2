#!/usr/bin/env bash
# Layer build speed: our LayerWriter (via layers/examples/build_layer.rs) beside
# `tar -c | pigz` and `tar -c | zstd -T0` on the same generated ~500 MB tree, same run.
#
# Usage: benches/layers/compare.sh [RUNS] [--levels]
#   RUNS      timed runs per row (median reported; default 3)
#   --levels  also time our gzip at levels 1, 4 and 9 (to choose the default)
# Env: COG_LAYERS_BENCH_DIR (default /tmp/cog-layers-bench) holds the tree and outputs.
set -euo pipefail

RUNS=3
LEVELS=0
for arg in "$@"; do
  case "$arg" in
    --levels) LEVELS=1 ;;
    *) RUNS=$arg ;;
  esac
done
REPO=$(cd "$(dirname "$0")/../.." && pwd)
ROOT=${COG_LAYERS_BENCH_DIR:-/tmp/cog-layers-bench}
TREE=$ROOT/tree
OUT=$ROOT/out
STORE=$ROOT/store
CORES=$(nproc)

for tool in tar pigz zstd python3; do
  command -v "$tool" >/dev/null || { echo "compare.sh: $tool is required" >&2; exit 1; }
done
[ -d "$TREE" ] || { echo "generating $TREE ..." >&2; python3 "$REPO/benches/layers/gen_tree.py" "$TREE"; }
(cd "$REPO" && cargo build --quiet --release -p layers --example build_layer)
TARGET=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN=$TARGET/release/examples/build_layer
mkdir -p "$OUT"
rm -rf "$STORE"

TAR=(tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$TREE" -cf - .)
# Warm the page cache so every row reads the tree from memory.
"${TAR[@]}" | cat >/dev/null
TAR_BYTES=$("${TAR[@]}" | wc -c)

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# row LABEL OUTPUT_FILE_OR_- COMMAND...  (for ours, OUTPUT is '-' and size comes from its JSON)
row() {
  local label=$1 output=$2; shift 2
  local times=() size=0
  for _ in $(seq "$RUNS"); do
    rm -f "$OUT"/*
    local start end json
    start=$(now)
    json=$(bash -c "$*")
    end=$(now)
    times+=("$(echo "$end - $start" | bc)")
    if [ "$output" = - ]; then
      size=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["layer"]["size"])' "$json")
    else
      size=$(stat -c %s "$output")
    fi
  done
  local med
  med=$(printf '%s\n' "${times[@]}" | median)
  printf '| %-34s | %7.2f | %8.1f | %6.1f | %5.3f |\n' "$label" "$med" \
    "$(echo "$size / 1048576" | bc -l)" "$(echo "$TAR_BYTES / 1048576 / $med" | bc -l)" \
    "$(echo "$size / $TAR_BYTES" | bc -l)"
}

ours() { echo "$BIN $TREE --store $STORE $*"; }
TARS=$(printf '%q ' "${TAR[@]}")

echo "tree: $TREE, $(find "$TREE" -type f | wc -l) files, tar stream $((TAR_BYTES / 1048576)) MiB;" \
  "$CORES cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); load $(cut -d' ' -f1-3 /proc/loadavg); median of $RUNS"
echo
echo "| command                            |  wall s | out MiB  | MiB/s  | ratio |"
echo "|------------------------------------|--------:|---------:|-------:|------:|"
row "tar -c > file"                   "$OUT/x.tar"    "$TARS > $OUT/x.tar"
row "ours, none"                      -               "$(ours --compression none --no-fsync)"
row "tar -c | pigz -p$CORES -6"       "$OUT/x.tar.gz" "$TARS | pigz -p$CORES -6 > $OUT/x.tar.gz"
row "ours, gzip 6"                    -               "$(ours --compression gzip --level 6 --no-fsync)"
row "ours, gzip 6, fsync"             -               "$(ours --compression gzip --level 6)"
row "tar -c | zstd -T0 -3"            "$OUT/x.tar.zst" "$TARS | zstd -q -T0 -3 > $OUT/x.tar.zst"
row "ours, zstd 3"                    -               "$(ours --compression zstd --level 3 --no-fsync)"
if [ "$LEVELS" = 1 ]; then
  for level in 1 4 9; do
    row "tar -c | pigz -p$CORES -$level" "$OUT/x.tar.gz" "$TARS | pigz -p$CORES -$level > $OUT/x.tar.gz"
    row "ours, gzip $level"             -               "$(ours --compression gzip --level "$level" --no-fsync)"
  done
fi
