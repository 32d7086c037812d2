#!/usr/bin/env bash
# A fresh CI runner building and pushing a model, with and without the registry build cache.
# Usage: benches/cache/run.sh [ROUNDS] [PROJECT]   (default: 3 rounds, a numpy + pillow +
# transformers model made here; the order of the two runs alternates each round)
#
# Setup (outside the timing): a local registry (Debian's docker-registry), a busybox-free
# default base, the project's locks made once, and runner A's build + push with --cache-to.
# Each round: a fresh COG_CACHE_DIR (an empty runner) builds and pushes to a new repository,
#   cold:   no cache (every wheel downloaded, every layer built and uploaded)
#   cached: --cache-from (layers mounted from the cache's repository, nothing built)
# Bytes moved: what the registry's access log says it sent (GETs) and received (blob uploads,
# sized from its storage), plus what the runner downloaded from elsewhere (its store's wheel
# and package downloads: the size of COG_CACHE_DIR after the run less the registry's part).
set -euo pipefail
ROUNDS=${1:-3}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
for tool in docker-registry python3 bc; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 1; }
done
cd "$REPO"
cargo build --quiet --release --bin cog
COG="$REPO/target/release/cog"
WORK=$(mktemp -d /tmp/cog-bench-cache.XXXXXX)
REGISTRY_PID=
cleanup() { [ -n "$REGISTRY_PID" ] && kill "$REGISTRY_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
now() { date +%s.%N; }

if [ -n "${2:-}" ]; then
  cp -r "$2" "$WORK/project"
else
  mkdir -p "$WORK/project"
  cat > "$WORK/project/cog.yaml" <<'YAML'
build:
  python_version: "3.11"
  python_packages:
    - numpy==2.1.3
    - pillow==11.0.0
    - transformers==4.46.3
predict: "predict.py:Predictor"
YAML
  cat > "$WORK/project/predict.py" <<'PY'
from cog import BasePredictor


class Predictor(BasePredictor):
    def predict(self, text: str) -> str:
        return text.upper()
PY
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$WORK/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$PORT
YAML
docker-registry serve "$WORK/registry.yml" > "$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.1; done
HOST="127.0.0.1:$PORT"

cd "$WORK/project"
COG_CACHE_DIR="$WORK/runner-a" "$COG" build --progress quiet >/dev/null   # the locks
COG_CACHE_DIR="$WORK/runner-a" "$COG" build --progress quiet -t "$HOST/model:a" --push \
  --cache-to "$HOST/cache:main" >/dev/null

# Bytes the registry sent and received since log offset $1.
registry_bytes() {
  python3 - "$WORK/registry.log" "$1" "$WORK/registry" <<'PY'
import os, re, sys
log, start, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
text = open(log, errors="replace").read()[start:]
sent = received = 0
for line in text.splitlines():
    m = re.search(r'"(GET|PUT|PATCH) (\S+) HTTP/[\d.]+" (\d+) (\d+)', line)
    if not m:
        continue
    method, path, status, size = m.group(1), m.group(2), int(m.group(3)), int(m.group(4))
    if method == "GET" and status < 300:
        sent += size
    d = re.search(r"digest=sha256(?::|%3A)([0-9a-f]{64})", path)
    if method == "PUT" and d and status < 300:
        blob = os.path.join(root, "docker/registry/v2/blobs/sha256", d.group(1)[:2], d.group(1), "data")
        received += os.path.getsize(blob)
print(sent, received)
PY
}

run() { # kind round
  local kind=$1 round=$2 runner="$WORK/runner-$1-$2" extra=()
  [ "$kind" = cached ] && extra=(--cache-from "$HOST/cache:main")
  local offset; offset=$(stat -c %s "$WORK/registry.log")
  local t0; t0=$(now)
  COG_CACHE_DIR="$runner" "$COG" build --progress quiet -t "$HOST/model-$kind-$round:latest" \
    --push "${extra[@]}" >/dev/null
  local t1; t1=$(now)
  read -r sent received < <(registry_bytes "$offset")
  local store; store=$(du -sb "$runner" | cut -f1)
  echo "$kind $(echo "$t1 - $t0" | bc) $sent $received $store" >> "$WORK/results"
  rm -rf "$runner"
}

for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then run cold "$round"; run cached "$round"; else run cached "$round"; run cold "$round"; fi
done

python3 - "$WORK/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def med(kind, i):
    return statistics.median(float(r[i]) for r in rows if r[0] == kind)
print(f"{'fresh runner, build + push':34} {'seconds':>8} {'registry->runner':>17} {'runner->registry':>17} {'runner store':>13}")
for kind in ("cold", "cached"):
    print(f"{kind:34} {med(kind,1):8.2f} {med(kind,2)/1e6:14.1f} MB {med(kind,3)/1e6:14.1f} MB {med(kind,4)/1e6:10.1f} MB")
cold_bytes = med("cold", 2) + med("cold", 3) + med("cold", 4)
cached_bytes = med("cached", 2) + med("cached", 3) + med("cached", 4)
print(f"cached/cold: time {med('cached',1)/med('cold',1):.2f}x, bytes {cached_bytes/cold_bytes:.3f}x (medians of {len(rows)//2} rounds)")
PY
