#!/usr/bin/env bash
# On a machine with a GPU: extraction, steering (incl. --device-map auto and layers split
# over two devices), transfer and scoring on the bundled models; PASS/FAIL per step.
#   bench/gpu_check.sh [--device cuda] [--slm smollm2-135m] [--llm qwen2.5-0.5b]
# Needs the venv `make test` builds (with a CUDA torch installed first, see README).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
exec "$PY" bench/gpu_check.py "$@"
