#!/usr/bin/env bash
# Warm `cog run` of a built model (the image already in the engine, or the rootfs unpacked for
# runc): interleaved rounds over the runtimes, median per runtime. Beside ours: PEER (another
# cog binary, e.g. main's before a change: PEER=/path/to/cog), and the floor, the engine alone
# starting the same image's server and answering one prediction (`docker run` + curl), which no
# `cog run` can beat.
# Usage: benches/run/warm.sh [rounds] [runtimes...]   (default: 5 docker podman runc)
# Env: COG (default: target/release/cog, built when missing), PEER, PROJECT (examples/hello),
#      COG_BENCH_INPUT (text=bench).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
if [ -z "${COG:-}" ]; then
    [ -x target/release/cog ] || cargo build --release --quiet
    COG="$ROOT/target/release/cog"
fi
ROUNDS="${1:-5}"
shift || true
RUNTIMES=("${@:-docker podman runc}")
read -r -a RUNTIMES <<<"${RUNTIMES[*]}"
WORK="$(mktemp -d /tmp/cog-bench-warm.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cp -r "${PROJECT:-examples/hello}" "$WORK/project"
cd "$WORK/project"
INPUT="${COG_BENCH_INPUT:-text=bench}"
export COG_CACHE_DIR="${COG_CACHE_DIR:-$WORK/cache}" BUILDKIT_PROGRESS=quiet

now() { date +%s.%N; }
# Seconds a command takes; its stdout is dropped, a failure stops the benchmark.
timed() {
    local t0 t1
    t0=$(now)
    "$@" >/dev/null 2>"$WORK/stderr" || { cat "$WORK/stderr" >&2; exit 1; }
    t1=$(now)
    echo "$t1 - $t0" | bc
}
median() { sort -n | awk '{a[NR]=$1} END {m=int((NR+1)/2); if (NR%2) print a[m]; else printf "%.3f\n", (a[m]+a[m+1])/2}'; }

# The floor: the engine starts the image's server, one prediction, the container removed.
floor() {
    local engine=$1 name id port
    name="cog-floor-$$"
    "$engine" run -d --rm --name "$name" -p 127.0.0.1::5000 -v "$PWD:/src" \
        -e PYTHONDONTWRITEBYTECODE=1 cog-project:latest >/dev/null
    port=$("$engine" port "$name" 5000/tcp | head -1 | sed 's/.*://')
    until curl -sf "http://127.0.0.1:$port/health-check" | grep -q READY; do sleep 0.02; done
    curl -sf -H 'content-type: application/json' -d '{"input":{"text":"bench"}}' \
        "http://127.0.0.1:$port/predictions" >/dev/null
    "$engine" kill "$name" >/dev/null
}

# Warm-up: build once, and one run per runtime (loads the image, unpacks the rootfs).
"$COG" build -t cog-project:latest >/dev/null 2>&1
for runtime in "${RUNTIMES[@]}"; do
    "$COG" run --runtime "$runtime" -i "$INPUT" >/dev/null 2>&1
    [ -z "${PEER:-}" ] || "$PEER" run --runtime "$runtime" -i "$INPUT" >/dev/null 2>&1
done

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A times
for round in $(seq "$ROUNDS"); do
    for runtime in "${RUNTIMES[@]}"; do
        times[$runtime,ours]+="$(timed "$COG" run --runtime "$runtime" -i "$INPUT") "
        if [ -n "${PEER:-}" ]; then
            times[$runtime,peer]+="$(timed "$PEER" run --runtime "$runtime" -i "$INPUT") "
        fi
        if [ "$runtime" != runc ]; then
            times[$runtime,floor]+="$(timed floor "$runtime") "
        fi
    done
    echo "round $round done (load $(cut -d' ' -f1 /proc/loadavg))"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n%-8s %10s %10s %10s   %s\n' runtime "ours (s)" "peer (s)" "floor (s)" "ours, every round"
for runtime in "${RUNTIMES[@]}"; do
    ours=$(tr ' ' '\n' <<<"${times[$runtime,ours]}" | grep . | median)
    peer=$(tr ' ' '\n' <<<"${times[$runtime,peer]:-}" | grep . | median || true)
    floor=$(tr ' ' '\n' <<<"${times[$runtime,floor]:-}" | grep . | median || true)
    printf '%-8s %10s %10s %10s   %s\n' "$runtime" "$ours" "${peer:--}" "${floor:--}" "${times[$runtime,ours]}"
done
