#!/usr/bin/env bash
# Layer build speed: our LayerWriter (via layers/examples/build_layer.rs) beside
# `tar -c | pigz` and `tar -c | zstd -T0` on the same generated ~500 MB tree, same run.
#
# Rows are measured round-robin (run 1 of every row, then run 2 of every row, ...), so a load
# change on a shared machine hits ours and the peer alike. Prints, per row, the median wall
# time and the median CPU time (user+sys of the whole pipeline: tar, pigz/zstd, or ours).
#
# Usage: benches/layers/compare.sh [RUNS] [--levels] [--only gzip|zstd]
#   RUNS      timed runs per row (median reported; default 3)
#   --levels  also time pigz and our gzip at levels 1, 4 and 9 (to choose the default)
#   --only    just the peer and ours for one compression
# Env: COG_LAYERS_BENCH_DIR (default /tmp/cog-layers-bench) holds the tree and outputs.
set -euo pipefail

RUNS=3
LEVELS=0
ONLY=
while [ $# -gt 0 ]; do
  case "$1" in
    --levels) LEVELS=1 ;;
    --only) ONLY=$2; shift ;;
    *) RUNS=$1 ;;
  esac
  shift
done
REPO=$(cd "$(dirname "$0")/../.." && pwd)
ROOT=${COG_LAYERS_BENCH_DIR:-/tmp/cog-layers-bench}
TREE=$ROOT/tree
OUT=$ROOT/out
STORE=$ROOT/store
CORES=$(nproc)

for tool in tar pigz zstd python3 bc /usr/bin/time; do
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
TARS=$(printf '%q ' "${TAR[@]}")
ours() { echo "$BIN $TREE --store $STORE $*"; }

LABELS=() OUTPUTS=() COMMANDS=()
# add LABEL OUTPUT_FILE_OR_- COMMAND  (for ours, OUTPUT is '-': the size comes from its JSON)
add() { LABELS+=("$1"); OUTPUTS+=("$2"); COMMANDS+=("$3"); }
if [ -z "$ONLY" ]; then
  add "tar -c > file" "$OUT/x.tar" "$TARS > $OUT/x.tar"
  add "ours, none" - "$(ours --compression none --no-fsync)"
fi
if [ -z "$ONLY" ] || [ "$ONLY" = gzip ]; then
  add "tar -c | pigz -p$CORES -6" "$OUT/x.tar.gz" "$TARS | pigz -p$CORES -6 > $OUT/x.tar.gz"
  add "ours, gzip 6" - "$(ours --compression gzip --level 6 --no-fsync)"
  [ -n "$ONLY" ] || add "ours, gzip 6, fsync" - "$(ours --compression gzip --level 6)"
fi
if [ -z "$ONLY" ] || [ "$ONLY" = zstd ]; then
  add "tar -c | zstd -T0 -3" "$OUT/x.tar.zst" "$TARS | zstd -q -T0 -3 > $OUT/x.tar.zst"
  add "ours, zstd 3" - "$(ours --compression zstd --level 3 --no-fsync)"
fi
if [ "$LEVELS" = 1 ]; then
  for level in 1 4 9; do
    add "tar -c | pigz -p$CORES -$level" "$OUT/x.tar.gz" "$TARS | pigz -p$CORES -$level > $OUT/x.tar.gz"
    add "ours, gzip $level" - "$(ours --compression gzip --level "$level" --no-fsync)"
  done
fi

declare -A WALLS CPUS SIZES
for _ in $(seq "$RUNS"); do
  for i in "${!LABELS[@]}"; do
    rm -f "$OUT"/*
    # GNU time: wall, then user+sys of bash and every process of the pipeline it waited for.
    json=$(/usr/bin/time -o "$ROOT/time" -f '%e %U %S' bash -c "${COMMANDS[$i]}")
    read -r wall user sys <"$ROOT/time"
    WALLS[$i]+="$wall "
    CPUS[$i]+="$(echo "$user + $sys" | bc) "
    if [ "${OUTPUTS[$i]}" = - ]; then
      SIZES[$i]=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["layer"]["size"])' "$json")
    else
      SIZES[$i]=$(stat -c %s "${OUTPUTS[$i]}")
    fi
  done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "tree: $TREE, $(find "$TREE" -type f | wc -l) files, tar stream $((TAR_BYTES / 1048576)) MiB;" \
  "$CORES cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); median of $RUNS" \
  "round-robin runs; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| command                            |  wall s |  CPU s | out MiB  | MiB/s  | ratio | wall s, each run |"
echo "|------------------------------------|--------:|-------:|---------:|-------:|------:|------------------|"
for i in "${!LABELS[@]}"; do
  wall=$(echo "${WALLS[$i]}" | median)
  cpu=$(echo "${CPUS[$i]}" | median)
  size=${SIZES[$i]}
  printf '| %-34s | %7.2f | %6.2f | %8.1f | %6.1f | %5.3f | %s |\n' "${LABELS[$i]}" "$wall" "$cpu" \
    "$(echo "$size / 1048576" | bc -l)" "$(echo "$TAR_BYTES / 1048576 / $wall" | bc -l)" \
    "$(echo "$size / $TAR_BYTES" | bc -l)" "${WALLS[$i]% }"
done
