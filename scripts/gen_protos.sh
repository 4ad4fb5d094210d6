#!/bin/sh
# Regenerate the Python stubs for xray/protos/*.proto.
# Run from the repository root: scripts/gen_protos.sh
set -eu

cd "$(dirname "$0")/.."
# Messages only: the client and the simulator build their method handlers
# from the prefix at run time, so generated service classes go unused.
.venv/bin/python -m grpc_tools.protoc \
    -I . \
    --python_out=. \
    xray/protos/*.proto
