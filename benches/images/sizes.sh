#!/usr/bin/env bash
# Image sizes of every example: each is built (on fresh locks, in a copy of the example) and
# written as an OCI layout; the table gives its layers' compressed size (what a registry
# stores and a machine pulls), the base layer's share, the uncompressed size and the number of
# Debian packages in the base.
#
#   benches/images/sizes.sh [path/to/cog]        (default: target/release/cog)
#
# COG_CACHE_DIR, COG_APT_MIRROR and COG_CA_CERT are passed through as set.
set -euo pipefail
cd "$(dirname "$0")/../.."
cog=$(realpath "${1:-target/release/cog}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "| example | layers | compressed (MB) | base layer (MB) | uncompressed (MB) | base packages |"
echo "|---|---|---|---|---|---|"
for example in examples/*/; do
    name=$(basename "$example")
    cp -r "$example" "$work/$name"
    if ! (cd "$work/$name" && "$cog" build --output "$work/$name.oci" >"$work/$name.log" 2>&1); then
        echo "| $name | build failed: see below | | | | |"
        tail -5 "$work/$name.log" >&2
        continue
    fi
    python3 - "$work/$name.oci" "$work/$name/cog-base.lock" "$name" <<'PY'
import gzip, json, os, sys, zlib

layout, lock, name = sys.argv[1:4]
def blob(digest):
    return os.path.join(layout, "blobs", *digest.split(":"))
index = json.load(open(os.path.join(layout, "index.json")))
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
layers = manifest["layers"]
compressed = sum(l["size"] for l in layers)
base = layers[0]["size"]
uncompressed = 0
for l in layers:
    with open(blob(l["digest"]), "rb") as f:
        head = f.read(4)
        f.seek(0)
        if head[:2] == b"\x1f\x8b":
            with gzip.open(f) as g:
                while chunk := g.read(1 << 20):
                    uncompressed += len(chunk)
        else:
            uncompressed += os.path.getsize(blob(l["digest"]))
packages = len(json.load(open(lock))["packages"]) if os.path.exists(lock) else "-"
mb = lambda n: f"{n / 1e6:.1f}"
print(f"| {name} | {len(layers)} | {mb(compressed)} | {mb(base)} | {mb(uncompressed)} | {packages} |")
PY
done
