#!/usr/bin/env bash
# The GPU check of the project: CUDA-marked tests, steps/s and peak memory of every strategy and of NNI's
# RandomOneShot (fp32 and bf16), one `nds train` and one DDP run on one GPU, printed as one table.
# Runs in at most 8 minutes on one GPU. On a machine without a GPU: benchmarks/gpu_check.sh --cpu --tiny
set -euo pipefail
cd "$(dirname "$0")/.."
exec timeout 480 "${PYTHON:-python3}" -m benchmarks.gpu "$@"
