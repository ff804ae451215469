#!/usr/bin/env bash
# One GPU check of hf_w2v2, run as is on any machine with an NVIDIA GPU (issue 37.5):
#
#     bash bench/gpu_check.sh            # from the repository root or anywhere; < 10 min on one GPU
#     bash bench/gpu_check.sh --quick    # fewer timed repeats
#
# Parity with stock transformers on CUDA (fp32 and bf16), a fine-tuning and a pre-training step of the base
# config with SDPA and bf16 (throughput vs stock), inference throughput, and DDP over every GPU present
# (equal losses with one GPU). Prints one table; exit status 0 when every row is ok or skip.
# Without a CUDA GPU it says so and exits with status 2 before any work. The checks: bench/gpu_check.py.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-$(command -v python || command -v python3 || echo python)}"

if ! command -v "$python" > /dev/null 2>&1; then
    echo "gpu_check: no '$python' on PATH: activate the environment hf_w2v2 is installed in (or set PYTHON=...)" >&2
    exit 2
fi
if ! "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2> /dev/null; then
    echo "gpu_check: no CUDA GPU visible to torch (torch.cuda.is_available() is False, or torch is missing):" >&2
    echo "gpu_check: nothing checked. Run this on a machine with an NVIDIA GPU and a CUDA build of torch." >&2
    exit 2
fi
if command -v nvidia-smi > /dev/null 2>&1; then
    nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader
fi
cd "$root"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 900 "$python" bench/gpu_check.py "$@"
