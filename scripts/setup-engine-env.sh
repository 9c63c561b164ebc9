#!/usr/bin/env bash
# Creates or updates the trainer engine's Python environment, .venv-engine/ at the repository root, from the
# pinned services/learner/engine/requirements*.txt. Idempotent: when the venv was built from the same files it
# returns at once. Prints the interpreter's path as its last line on stdout; progress goes to stderr.
#   PARLEY_ENGINE_VENV   the venv's folder (default <repo>/.venv-engine)
#   PARLEY_BASE_PYTHON   the CPython 3.9–3.12 that creates it (default: python3 on PATH)
# A fresh install downloads about 3.0 GB (torch with its CUDA libraries: PyPI has no CPU-only Linux wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${PARLEY_ENGINE_VENV:-$ROOT/.venv-engine}
BASE_PYTHON=${PARLEY_BASE_PYTHON:-python3}
REQS=(services/learner/engine/requirements-torch.txt services/learner/engine/requirements.txt)
STAMP=$VENV/.parley-requirements.sha256

want=$(cat "${REQS[@]}" | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  echo "engine environment $VENV is up to date" >&2
  echo "$VENV/bin/python"
  exit 0
fi

started=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$BASE_PYTHON" -c 'import sys; sys.exit(not ((3, 9) <= sys.version_info[:2] <= (3, 12)))' 2>/dev/null; then
    echo "setup-engine-env: $BASE_PYTHON is not CPython 3.9–3.12 (torch 2.5.1 has wheels for those); set PARLEY_BASE_PYTHON" >&2
    exit 2
  fi
  echo "creating $VENV with $("$BASE_PYTHON" --version 2>&1)" >&2
  "$BASE_PYTHON" -m venv "$VENV"
fi
rm -f "$STAMP"
echo "installing the engine's packages into $VENV (a fresh install downloads about 3.0 GB)" >&2
# One resolver run over both files, so pip checks that every pin agrees with every other.
"$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --progress-bar off \
  $(printf -- '-r %s ' "${REQS[@]}") >&2
"$VENV/bin/python" -c 'import torch, grpc, google.protobuf, safetensors, transformers, peft' >&2
echo "$want" > "$STAMP"
echo "engine environment ready in $(( $(date +%s) - started )) s: $("$VENV/bin/python" -c 'import torch, transformers, peft; print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")')" >&2
echo "$VENV/bin/python"
