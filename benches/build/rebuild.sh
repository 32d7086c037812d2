#!/usr/bin/env bash
# Cold build vs warm rebuild after a code-only change (issue: "warm rebuild under 0.3 s").
# Usage: benches/build/rebuild.sh [project-dir]   (default: examples/hello)
# Cold: an empty cache (every base package and wheel downloaded, every layer built); the locks
# next to cog.yaml are made first, outside the timing, so both runs build the same inputs.
# Warm: the same cache after editing predict.py's body. Both write the image to a tarball.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
COG="$PWD/target/release/cog"
SRC="${1:-examples/hello}"
WORK="$(mktemp -d /tmp/cog-bench-rebuild.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cp -r "$SRC" "$WORK/project"
cd "$WORK/project"

now() { date +%s.%N; }
export COG_CACHE_DIR="$WORK/cache-warmup"
"$COG" build --progress quiet >/dev/null            # makes the locks

export COG_CACHE_DIR="$WORK/cache"
t0=$(now); "$COG" build --progress quiet --output "$WORK/cold.tar" >/dev/null; t1=$(now)
sed -i 's/return f"/return f"" + f"/' predict.py    # a code-only change
t2=$(now); "$COG" build --progress quiet --output "$WORK/warm.tar" >/dev/null; t3=$(now)
t4=$(now); "$COG" build --progress quiet >/dev/null; t5=$(now)

printf '%-44s %8s\n' "run" "seconds"
printf '%-44s %8.3f\n' "cold build (empty cache) + tarball" "$(echo "$t1 - $t0" | bc)"
printf '%-44s %8.3f\n' "warm rebuild after code change + tarball" "$(echo "$t3 - $t2" | bc)"
printf '%-44s %8.3f\n' "warm rebuild, no change, no tarball" "$(echo "$t5 - $t4" | bc)"
