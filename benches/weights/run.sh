#!/usr/bin/env bash
# Weights: layering 2 GiB of weight-like (random, incompressible) files, ours beside
# `tar -c | pigz` and `tar -c | zstd -T0` in the same run, interleaved rounds, medians; then a
# model with those weights pushed to a local registry, a code-only change, and the bytes the
# re-push adds to the registry.
#
# Rows:
#   tar -c > file                 the floor: reading the files and writing them once
#   tar -c | pigz -pN -6          Cog's path (docker build + push compress layers with gzip)
#   tar -c | zstd -q -T0 -3
#   ours: LayerWriter, plain tar  what `cog build` does with an incompressible large file
#                                 (layers/examples/build_layer --compression none), sha256 incl.
#   ours: cog weights import      managed weights: read once into layers + the file store +
#                                 per-file sha256, pushed to a registry on 127.0.0.1
#
# Usage: benches/weights/run.sh [ROUNDS]   (default 3)
# Env: COG_WEIGHTS_BENCH_DIR (default /tmp/cog-weights-bench), COG_WEIGHTS_BENCH_MIB (2048),
#      COG (default target/debug/cog, built if missing).
set -euo pipefail

ROUNDS=${1:-3}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
ROOT=${COG_WEIGHTS_BENCH_DIR:-/tmp/cog-weights-bench}
MIB=${COG_WEIGHTS_BENCH_MIB:-2048}
CORES=$(nproc)
TARGET=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
COG=${COG:-$TARGET/debug/cog}
for tool in tar pigz zstd python3 bc docker-registry curl /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 1; }
done
[ -x "$COG" ] || (cd "$REPO" && cargo build --quiet --bin cog)
(cd "$REPO" && cargo build --quiet --release -p layers --example build_layer)
BIN=$TARGET/release/examples/build_layer

MODEL=$ROOT/model
TREE=$MODEL/weights
OUT=$ROOT/out
mkdir -p "$TREE" "$OUT"
if [ "$(du -sm "$TREE" | cut -f1)" -lt "$MIB" ]; then
  echo "generating $MIB MiB of random shards in $TREE ..." >&2
  python3 - "$TREE" "$MIB" <<'PY'
import os, sys
tree, mib = sys.argv[1], int(sys.argv[2])
shard = 512
for i in range(max(1, mib // shard)):
    with open(os.path.join(tree, f"model-{i:05d}.safetensors"), "wb") as f:
        for _ in range(min(shard, mib)):
            f.write(os.urandom(1 << 20))
with open(os.path.join(tree, "config.json"), "w") as f:
    f.write('{"architectures": ["Bench"], "hidden_size": 4096}\n')
PY
fi
INPUT=$(du -sb "$TREE" | cut -f1)

# A registry on a free port, its storage under $ROOT.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=$ROOT/registry
rm -rf "$REG"; mkdir -p "$REG"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\n' "$REG" "$PORT" >"$REG/config.yml"
docker-registry serve "$REG/config.yml" >"$REG/log" 2>&1 &
REGPID=$!
trap 'kill $REGPID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.1; done

cat >"$MODEL/cog.yaml" <<YAML
build:
  python_version: "3.12"
run: "predict.py:Predictor"
model: 127.0.0.1:$PORT/bench/model
weights:
  - name: shards
    target: /src/weights
    source:
      uri: weights
YAML
printf 'from cog import BasePredictor\n\n\nclass Predictor(BasePredictor):\n    def predict(self, s: str) -> str:\n        return s\n' >"$MODEL/predict.py"

TAR=(tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$TREE" -cf - .)
TARS=$(printf '%q ' "${TAR[@]}")
LABELS=() OUTPUTS=() COMMANDS=()
add() { LABELS+=("$1"); OUTPUTS+=("$2"); COMMANDS+=("$3"); }
add "tar -c > file" "$OUT/x.tar" "$TARS > $OUT/x.tar"
add "tar -c | pigz -p$CORES -6" "$OUT/x.tar.gz" "$TARS | pigz -p$CORES -6 > $OUT/x.tar.gz"
add "tar -c | zstd -q -T0 -3" "$OUT/x.tar.zst" "$TARS | zstd -q -T0 -3 > $OUT/x.tar.zst"
add "ours: LayerWriter, plain tar" "layer" "$BIN $TREE --store $OUT/store --compression none --no-fsync"
# Each import run: a fresh cache and a fresh repository (the registry has none of its blobs).
add "ours: cog weights import + push" "import" \
  "cd $MODEL && rm -rf $OUT/cache && sed -i \"s|bench/model[0-9]*|bench/model\$RANDOM|\" cog.yaml && COG_CACHE_DIR=$OUT/cache NO_COLOR=1 $COG weights import >$OUT/import.log 2>&1"

"${TAR[@]}" | cat >/dev/null # page cache
declare -A WALLS CPUS SIZES
for _ in $(seq "$ROUNDS"); do
  for i in "${!LABELS[@]}"; do
    rm -rf "$OUT"/x.* "$OUT/store"
    json=$(/usr/bin/time -o "$ROOT/time" -f '%e %U %S' bash -c "${COMMANDS[$i]}")
    read -r wall user sys <"$ROOT/time"
    WALLS[$i]+="$wall "
    CPUS[$i]+="$(echo "$user + $sys" | bc) "
    case "${OUTPUTS[$i]}" in
      layer) SIZES[$i]=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["layer"]["size"])' "$json") ;;
      import) SIZES[$i]=$(python3 -c 'import json,sys; print(sum(l["size"] for w in json.load(open(sys.argv[1]))["weights"] for l in w["layers"]))' "$MODEL/weights.lock") ;;
      *) SIZES[$i]=$(stat -c %s "${OUTPUTS[$i]}") ;;
    esac
  done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "input: $((INPUT / 1048576)) MiB in $(find "$TREE" -type f | wc -l) files; $CORES cores" \
  "($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); median of $ROUNDS interleaved rounds;" \
  "load average at the end $(cut -d' ' -f1-3 /proc/loadavg); cog: $COG"
echo
echo "| command                          |  wall s |  CPU s | out MiB  | out/input | wall s, each run |"
echo "|----------------------------------|--------:|-------:|---------:|----------:|------------------|"
for i in "${!LABELS[@]}"; do
  wall=$(echo "${WALLS[$i]}" | median)
  cpu=$(echo "${CPUS[$i]}" | median)
  size=${SIZES[$i]}
  printf '| %-32s | %7.2f | %6.2f | %8.1f | %9.4f | %s |\n' "${LABELS[$i]}" "$wall" "$cpu" \
    "$(echo "$size / 1048576" | bc -l)" "$(echo "$size / $INPUT" | bc -l)" "${WALLS[$i]% }"
done

# A code-only change, re-pushed: what the registry gains, for the weights as large project
# files (in layers of their own, below the code) and as managed weights (mounted from their
# repository into the model's index).
echo
registry_bytes() { du -sb "$REG/data" | cut -f1; }
export COG_CACHE_DIR=$OUT/cache NO_COLOR=1
rm -rf "$OUT/cache"
repush() { # DIR NAME
  local dir=$1 name=$2 before first second
  before=$(registry_bytes)
  (cd "$dir" && "$COG" push --progress plain >"$OUT/$name-push1.log" 2>&1)
  first=$(registry_bytes)
  echo "# changed $RANDOM" >>"$dir/predict.py"
  (cd "$dir" && "$COG" push --progress plain >"$OUT/$name-push2.log" 2>&1)
  second=$(registry_bytes)
  echo "$name: first push: registry +$((first - before)) bytes; re-push after a code-only change: registry +$((second - first)) bytes"
  grep -h "total:" "$OUT/$name-push1.log" "$OUT/$name-push2.log" | sed 's/^/  /'
}
FILES=$ROOT/model-files
rm -rf "$FILES"; mkdir -p "$FILES"
cp -al "$TREE" "$FILES/weights"
cp "$MODEL/predict.py" "$FILES/"
printf 'build:\n  python_version: "3.12"\nrun: "predict.py:Predictor"\nimage: 127.0.0.1:%s/bench/files\n' "$PORT" >"$FILES/cog.yaml"
repush "$FILES" large-files
cd "$MODEL"
sed -i "s|bench/model[0-9]*|bench/model|" cog.yaml
printf 'weights/\n' >.dockerignore
"$COG" weights import >/dev/null 2>&1
repush "$MODEL" managed
