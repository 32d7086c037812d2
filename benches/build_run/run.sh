#!/usr/bin/env bash
# build.run against `docker build` (issue 14): the same model, on the same base, with one apt
# package and one pip package installed by build commands, built cold, warm (nothing changed)
# and after a code-only change, both tools measured side by side in interleaved rounds.
#
# Usage: benches/build_run/run.sh [rounds]   (default 3; needs Docker, runc, uidmap)
#
# The same base for both: `cog build` of the model without its commands, loaded into Docker as
# `cog-bench-base`; Docker's Dockerfile is FROM it, RUN each command, COPY predict.py. Cog
# builds the model with the commands in cog.yaml. "cold" is `--no-cache` for both (the base is
# kept, the commands run again and download again), "warm" is a rebuild with nothing changed,
# "code" a rebuild after editing predict.py (the command layers are reused by both).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS="${1:-3}"
cargo build --release --quiet
COG="$PWD/target/release/cog"
WORK="$(mktemp -d /tmp/cog-bench-build-run.XXXXXX)"
trap 'rm -rf "$WORK"; docker rmi -f cog-bench-base cog-bench-docker >/dev/null 2>&1 || true' EXIT
export COG_CACHE_DIR="$WORK/cache"
# Build commands download over HTTPS: give them this machine's CA (a proxy's), as users do.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  export COG_CA_CERT=/usr/local/share/ca-certificates
fi

APT="apt-get update -qq && apt-get install -y -qq --no-install-recommends jq"
PIP="python -m pip install --no-cache-dir six==1.16.0"
mkdir -p "$WORK/base" "$WORK/cog" "$WORK/docker"
cat > "$WORK/base/cog.yaml" <<YAML
build:
  python_version: "3.11"
predict: "predict.py:Predictor"
YAML
cat > "$WORK/predict.py" <<'PY'
from cog import BasePredictor


class Predictor(BasePredictor):
    def predict(self) -> str:
        return "ok"
PY
cp "$WORK/predict.py" "$WORK/base/"
(cd "$WORK/base" && "$COG" build --progress quiet --output "$WORK/base.tar" >/dev/null)
docker load -q -i "$WORK/base.tar" | awk '{print $NF}' | xargs -I{} docker tag {} cog-bench-base

cat > "$WORK/cog/cog.yaml" <<YAML
build:
  python_version: "3.11"
  run:
    - $APT
    - $PIP
predict: "predict.py:Predictor"
YAML
cp "$WORK/predict.py" "$WORK/cog/"
cat > "$WORK/docker/Dockerfile" <<DOCKERFILE
FROM cog-bench-base
RUN $APT
RUN $PIP
COPY predict.py /src/predict.py
DOCKERFILE
cp "$WORK/predict.py" "$WORK/docker/"

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
cog_build() { (cd "$WORK/cog" && "$COG" build --progress quiet "$@" >/dev/null); }
# BuildKit when the buildx plugin is installed, else Docker's classic builder (Debian's docker.io).
if docker buildx version >/dev/null 2>&1; then BUILDKIT=1; else BUILDKIT=0; fi
docker_build() { (cd "$WORK/docker" && DOCKER_BUILDKIT=$BUILDKIT docker build -q -t cog-bench-docker "$@" . >/dev/null); }
edit() { sed -i "s/return \"ok\"/return \"ok\" + \"$1\"/" "$WORK/cog/predict.py" "$WORK/docker/predict.py"; }

LOAD0=$(cut -d" " -f1-3 /proc/loadavg)
cog_build; docker_build   # warm-up: both caches hold every layer once
declare -a cold_cog cold_docker warm_cog warm_docker code_cog code_docker
for round in $(seq "$ROUNDS"); do
  t0=$(now); cog_build --no-cache; t1=$(now); docker_build --no-cache; t2=$(now)
  cold_cog+=("$(secs "$t0" "$t1")"); cold_docker+=("$(secs "$t1" "$t2")")
  t0=$(now); docker_build; t1=$(now); cog_build; t2=$(now)
  warm_docker+=("$(secs "$t0" "$t1")"); warm_cog+=("$(secs "$t1" "$t2")")
  edit "$round"
  t0=$(now); cog_build; t1=$(now); docker_build; t2=$(now)
  code_cog+=("$(secs "$t0" "$t1")"); code_docker+=("$(secs "$t1" "$t2")")
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
printf 'load average before/after: %s / %s\n' "$LOAD0" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %10s %14s %8s\n' "build (median of $ROUNDS rounds)" "cog (s)" "docker build (s)" "ratio"
for what in cold warm code; do
  c="${what}_cog[@]"; d="${what}_docker[@]"
  mc=$(median "${!c}"); md=$(median "${!d}")
  printf '%-34s %10.3f %14.3f %8.2f\n' "$what" "$mc" "$md" "$(echo "$mc / $md" | bc -l)"
  printf '  rounds: cog %s | docker %s\n' "$(echo ${!c})" "$(echo ${!d})"
done
