#!/bin/sh
# Regenerate the Python stubs for xray/protos/*.proto.
# Run from the repository root: scripts/gen_protos.sh
set -eu

cd "$(dirname "$0")/.."
.venv/bin/python -m grpc_tools.protoc \
    -I . \
    --python_out=. \
    --grpc_python_out=. \
    xray/protos/*.proto
