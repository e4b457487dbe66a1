#!/usr/bin/env bash
# The GPU check of the project: CUDA-marked tests, steps/s and peak memory of every strategy and of NNI's
# RandomOneShot (fp32 and bf16), one `nds train` and one DDP run on one GPU, printed as one table.
# Runs in at most 8 minutes on one GPU. On a machine without a GPU: benchmarks/gpu_check.sh --cpu --tiny
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
# A machine set up for training only may lack the project or NNI: say what to install, not a traceback.
if ! "$PY" -c "import nni, pytorch_lightning, nni_dynamic_supernet" 2>/dev/null; then
    echo "gpu_check: $PY cannot import nni, pytorch_lightning or nni_dynamic_supernet; install the project first" \
         "(README, Install: pip install -e '.[test]' beside this machine's torch), or set PYTHON to a Python that has it" >&2
    exit 2
fi
exec timeout 480 "$PY" -m benchmarks.gpu "$@"
