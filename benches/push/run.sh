#!/usr/bin/env bash
# Push speed: `cog push` beside `skopeo copy oci:DIR docker://…`, same image, same local registry
# (Debian's docker-registry, fresh repositories), same run; then a re-push after a code-only change.
#
# The image: examples/hello built by `cog build` on a base of 10 layers of 20 MiB of noise each
# (~200 MB), each layer made by our layers crate (layers/examples/build_layer.rs).
#
# Usage: benches/push/run.sh [ROUNDS]   (default 2; the order of the two tools alternates)
# Env: COG_SDK_WHEEL / COGLET_WHEEL as for `cog build` (default: dist/).
set -euo pipefail
ROUNDS=${1:-2}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
for tool in docker-registry skopeo python3 bc; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 1; }
done
cargo build --quiet --release --bin cog
cargo build --quiet --release -p layers --example build_layer
COG="$REPO/target/release/cog"
BUILD_LAYER="$REPO/target/release/examples/build_layer"
WORK=$(mktemp -d /tmp/cog-bench-push.XXXXXX)
REGISTRY_PID=
cleanup() { [ -n "$REGISTRY_PID" ] && kill "$REGISTRY_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
now() { date +%s.%N; }

# 1. The base: 10 noise layers, straight into an OCI layout (its blobs dir is a layers store).
BASE="$WORK/base"
for i in $(seq 0 9); do
  mkdir -p "$WORK/tree$i/data"
  head -c $((20 << 20)) /dev/urandom > "$WORK/tree$i/data/noise$i.bin"
  "$BUILD_LAYER" "$WORK/tree$i" --store "$BASE" --no-fsync | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["layer"]))' >> "$WORK/layers.jsonl"
  rm -rf "$WORK/tree$i"
done
python3 - "$BASE" "$WORK/layers.jsonl" <<'PY'
import hashlib, json, os, sys
base, listing = sys.argv[1], sys.argv[2]
layers = [json.loads(line) for line in open(listing)]
def blob(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(base, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}
config = {"architecture": "amd64", "os": "linux",
          "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
          "rootfs": {"type": "layers", "diff_ids": [l["diff_id"] for l in layers]}}
config_desc = blob(json.dumps(config, separators=(",", ":")).encode())
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_desc},
            "layers": [{"mediaType": l["media_type"], "digest": l["digest"], "size": l["size"]} for l in layers]}
manifest_desc = blob(json.dumps(manifest, separators=(",", ":")).encode())
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest_desc,
                        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
json.dump(index, open(os.path.join(base, "index.json"), "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(base, "oci-layout"), "w"))
PY

# 2. A fresh registry per round (skopeo remembers where it pushed blobs and would mount them
#    from an earlier round's repository of the same registry).
start_registry() {
  [ -n "$REGISTRY_PID" ] && { kill "$REGISTRY_PID"; wait "$REGISTRY_PID" 2>/dev/null || true; }
  local port dir
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  REG="127.0.0.1:$port"
  dir="$WORK/registry-$port"
  mkdir -p "$dir"
  cat > "$dir/config.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $dir/data
http:
  addr: $REG
YML
  docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  REGISTRY_PID=$!
  for _ in $(seq 100); do curl -fsS "http://$REG/v2/" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "run.sh: docker-registry did not start: $(cat "$dir/log")" >&2; exit 1
}
start_registry

# 3. The image, built once (untimed) and written as an OCI layout for skopeo.
cp -r examples/hello "$WORK/project"
cd "$WORK/project"
export COG_CACHE_DIR="$WORK/cache"
IMAGE="bench/image:v1"
"$COG" build --progress quiet --base "oci:$BASE:latest" -t "$IMAGE" --output "$WORK/image" >/dev/null
SIZE=$(du -sb "$WORK/image/blobs" | cut -f1)
NLAYERS=$(python3 -c 'import json,sys; i=json.load(open(sys.argv[1]+"/index.json")); d=i["manifests"][0]["digest"].split(":")[1]; m=json.load(open(sys.argv[1]+"/blobs/sha256/"+d)); print(len(m["layers"]))' "$WORK/image")

# Seconds between cog's "Pushing image" and "pushed" progress events (the network part).
push_seconds() {
  python3 -c '
import json, sys
start = end = None
for line in open(sys.argv[1]):
    try: e = json.loads(line)
    except ValueError: continue
    m = e.get("message", "")
    if m.startswith("Pushing image"): start = e["elapsed_ms"]
    if m.endswith("pushed"): end = e["elapsed_ms"]
print("%.3f" % ((end - start) / 1000))' "$1"
}

cog_push() { # repo -> "wall push-part"
  local t0 t1
  t0=$(now)
  "$COG" push "$REG/$1:v1" --base "oci:$BASE:latest" --progress json >/dev/null 2>"$WORK/push.json"
  t1=$(now)
  echo "$(echo "$t1 - $t0" | bc) $(push_seconds "$WORK/push.json")"
}
skopeo_push() { # repo -> wall
  local t0 t1
  t0=$(now)
  skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/image" "docker://$REG/$1:v1" >/dev/null
  t1=$(now)
  echo "$t1 - $t0" | bc
}

echo "image: $NLAYERS layers, $((SIZE / 1000000)) MB of blobs; a fresh local docker-registry per round; $(nproc) cores"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %-30s %10s %12s\n' round tool "wall (s)" "network (s)"
for round in $(seq "$ROUNDS"); do
  start_registry
  if (( round % 2 )); then order="skopeo cog"; else order="cog skopeo"; fi
  for tool in $order; do
    if [ "$tool" = cog ]; then
      read -r wall net < <(cog_push "bench/cog$round")
      printf '%-6s %-30s %10.3f %12.3f\n' "$round" "cog push" "$wall" "$net"
    else
      wall=$(skopeo_push "bench/skopeo$round")
      printf '%-6s %-30s %10.3f %12s\n' "$round" "skopeo copy oci:DIR docker://" "$wall" "-"
    fi
  done
done

# 4. A code-only change, pushed again to the last cog repository.
sed -i 's/return f"/return f"" + f"/' predict.py
read -r wall net < <(cog_push "bench/cog$ROUNDS")
printf '%-6s %-30s %10.3f %12.3f\n' "re" "cog push after code change" "$wall" "$net"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
