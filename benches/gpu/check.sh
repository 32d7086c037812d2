#!/usr/bin/env bash
# On a host with an NVIDIA GPU (driver, Docker with the NVIDIA container toolkit, or podman with
# its CDI spec): build a torch model with `gpu: true` and, in its image, check
# torch.cuda.is_available() and run a matmul on the GPU (issue 16, "Must show").
# Usage: benches/gpu/check.sh [base flags...]
#   default: --base pytorch/pytorch:2.1.0-cuda12.1-cudnn8-runtime (conda's Python in /opt/conda;
#   cog-rs does not install Python onto nvidia/cuda yet). Also e.g. --use-cog-base-image.
# Needs the cog SDK and coglet wheels (python/build-wheels.sh) only for `cog run`; this uses
# `cog exec`, which needs neither.
set -euo pipefail
cd "$(dirname "$0")/../.."
nvidia-smi -L
cargo build --release --quiet
COG="$PWD/target/release/cog"
WORK="$(mktemp -d /tmp/cog-gpu-check.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
if [ "$#" -eq 0 ]; then set -- --base pytorch/pytorch:2.1.0-cuda12.1-cudnn8-runtime; fi
mkdir -p "$WORK/model"
cd "$WORK/model"
cat > cog.yaml <<'YAML'
build:
  gpu: true
  cuda: "12.1"
  python_version: "3.10"
  python_packages:
    - torch==2.1.0
YAML
cat > check.py <<'PY'
import time
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda)
assert torch.cuda.is_available(), "torch.cuda.is_available() is False"
print("device", torch.cuda.get_device_name(0))
a = torch.randn(4096, 4096, device="cuda")
torch.cuda.synchronize()
t = time.time()
c = a @ a
torch.cuda.synchronize()
print("matmul 4096x4096 on the GPU: %.1f ms, checksum %.3f" % ((time.time() - t) * 1000, c.abs().mean().item()))
PY
t0=$(date +%s.%N)
"$COG" build --progress plain "$@" -t cog-gpu-check
t1=$(date +%s.%N)
"$COG" exec "$@" python check.py
printf 'build: %.1f s\n' "$(echo "$t1 - $t0" | bc)"
