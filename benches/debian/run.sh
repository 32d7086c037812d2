#!/usr/bin/env bash
# The same package set (minbase + python3, python-is-python3, ca-certificates, tzdata, tini),
# assembled by us and by `debootstrap --variant=minbase`, in the same run, both from a cold cache
# and from the same mirror. Needs root (debootstrap), debootstrap, pigz.
# usage: benches/debian/run.sh [suite] [mirror]
set -euo pipefail
suite=${1:-bookworm}
mirror=${2:-${COG_APT_MIRROR:-http://deb.debian.org/debian}}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/debian-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p debian --example assemble_base --manifest-path "$root/Cargo.toml"
bin="$root/target/release/examples/assemble_base"

echo "== cog-rs (cold cache)" >&2
start=$(date +%s.%N)
COG_CACHE_DIR="$work/cache" COG_APT_MIRROR="$mirror" "$bin" "$suite" > "$work/ours.json"
ours=$(echo "$(date +%s.%N) - $start" | bc)
# Our own split (index fetch + parse, resolve, total) and the load average, for the record.
cat "$work/ours.json" >&2
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
blob=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["blob"])' "$work/ours.json")
ours_gz=$(stat -c %s "$blob")
ours_tar=$(pigz -dc < "$blob" | wc -c)

echo "== debootstrap --variant=minbase" >&2
start=$(date +%s.%N)
debootstrap --variant=minbase --include=python3,python-is-python3,ca-certificates,tzdata,tini \
  "$suite" "$work/rootfs" "$mirror" > "$work/debootstrap.log" 2>&1
theirs=$(echo "$(date +%s.%N) - $start" | bc)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# What an image of it would hold: the rootfs without debootstrap's downloaded .debs.
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb
theirs_tar=$(tar -C "$work/rootfs" --numeric-owner -cf - . | wc -c)
theirs_gz=$(tar -C "$work/rootfs" --numeric-owner -cf - . | pigz -6 | wc -c)

python3 - "$work/ours.json" "$ours" "$ours_tar" "$ours_gz" "$theirs" "$theirs_tar" "$theirs_gz" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
ours, ours_tar, ours_gz, theirs, theirs_tar, theirs_gz = map(float, sys.argv[2:])
print(f"suite {o['suite']}: {o['packages']} packages, {o['download_bytes']/1e6:.1f} MB of .debs")
print(f"| tool | wall time (s) | tar (MB) | tar.gz (MB) |")
print(f"|---|---|---|---|")
print(f"| cog-rs assemble_base | {ours:.1f} | {ours_tar/1e6:.1f} | {ours_gz/1e6:.1f} |")
print(f"| debootstrap --variant=minbase | {theirs:.1f} | {theirs_tar/1e6:.1f} | {theirs_gz/1e6:.1f} |")
print(f"time ratio cog-rs/debootstrap: {ours/theirs:.2f}x")
PY
