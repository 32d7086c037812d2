#!/usr/bin/env bash
# `cog run` of a model end to end (build + start + first prediction), from a cold cache and from
# a warm one, on each runtime: Docker, podman and runc (no daemon), back to back in one run.
# Usage: benches/run/run.sh [project-dir] [runtimes...]   (default: examples/hello docker podman runc)
# Cold: an empty cache (every base package and wheel downloaded, every layer built, the image
# loaded into the daemon or unpacked for runc; the daemon's copy is removed first). The locks next
# to cog.yaml are made first, outside the timing. Warm: the same command again, same cache.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${COG:-}" ]; then     # COG=/path/to/cog skips the release build
    cargo build --release --quiet
    COG="$PWD/target/release/cog"
fi
SRC="${1:-examples/hello}"
shift || true
RUNTIMES=("${@:-docker podman runc}")
read -r -a RUNTIMES <<<"${RUNTIMES[*]}"
WORK="$(mktemp -d /tmp/cog-bench-run.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cp -r "$SRC" "$WORK/project"
cd "$WORK/project"
INPUT="${COG_BENCH_INPUT:-text=bench}"

now() { date +%s.%N; }
export COG_CACHE_DIR="$WORK/cache-warmup" BUILDKIT_PROGRESS=quiet
"$COG" build >/dev/null            # makes the locks

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-6s %8s  %s\n' "runtime" "cache" "seconds" "output"
for runtime in "${RUNTIMES[@]}"; do
    case "$runtime" in
        docker | podman) "$runtime" rmi -f cog-project:latest >/dev/null 2>&1 || true ;;
    esac
    export COG_CACHE_DIR="$WORK/cache-$runtime"
    for cache in cold warm; do
        t0=$(now)
        out=$("$COG" run --runtime "$runtime" -i "$INPUT" 2>/dev/null)
        t1=$(now)
        printf '%-8s %-6s %8.3f  %s\n' "$runtime" "$cache" "$(echo "$t1 - $t0" | bc)" "$out"
    done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
