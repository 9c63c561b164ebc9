#!/bin/sh
# Regenerates the engine's Python gRPC stubs from the contracts: ./generate.sh [OUT_DIR]
# (default parley_engine/gen). A staleness check can generate into a temporary folder and diff.
set -eu
ENGINE_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$ENGINE_DIR/../../.." && pwd)
OUT=${1:-"$ENGINE_DIR/parley_engine/gen"}
PLUGIN=${GRPC_PYTHON_PLUGIN:-/usr/bin/grpc_python_plugin}

rm -rf "$OUT/parley" "$OUT/grpc_health"
mkdir -p "$OUT"
protoc -I "$ROOT/proto" --python_out="$OUT" --grpc_python_out="$OUT" \
  --plugin=protoc-gen-grpc_python="$PLUGIN" parley/v1/trainer.proto
protoc -I "$ENGINE_DIR/proto" --python_out="$OUT" --grpc_python_out="$OUT" \
  --plugin=protoc-gen-grpc_python="$PLUGIN" grpc_health/v1/health.proto
for pkg in parley parley/v1 grpc_health grpc_health/v1; do : > "$OUT/$pkg/__init__.py"; done
# protoc's Python output imports its siblings absolutely (`from parley.v1 import ...`), so the
# generated folder goes on sys.path, after everything already there.
cat > "$OUT/__init__.py" <<'PY'
"""Generated gRPC stubs (by generate.sh; never edit by hand)."""
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.append(_HERE)
PY
