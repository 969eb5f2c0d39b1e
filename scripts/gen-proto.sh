#!/usr/bin/env bash
# Regenerates the committed gRPC modules of the Open Inference Protocol from
# service/oip/grpc_predict_v2.proto (needs grpcio-tools, in the test extra). Run from
# anywhere; paths are relative to the repository root so the generated imports are
# package-qualified (service.oip.grpc_predict_v2_pb2).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
"$PYTHON" -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. \
  service/oip/grpc_predict_v2.proto
