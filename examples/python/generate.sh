#!/bin/sh
# Generates the Python stubs of pushgate's API from proto/ into ./gen (or the directory given).
# Debian: apt-get install protobuf-compiler protobuf-compiler-grpc libprotobuf-dev python3-grpcio python3-protobuf
set -eu
cd "$(dirname "$0")"
out=${1:-gen}
mkdir -p "$out"
protoc -I ../../proto -I /usr/include --python_out="$out" --grpc_python_out="$out" --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin ../../proto/pushgate/v1/*.proto
