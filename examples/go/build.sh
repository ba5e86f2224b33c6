#!/bin/sh
# Builds examples/go/push in GOPATH mode from Debian's Go libraries: no module proxy, no download.
# Usage: ./build.sh [WORK_DIR]   (default: ./build) — the binary is WORK_DIR/bin/push. Go caches compiled
# packages in its GOCACHE (~/.cache/go-build): the first build compiles grpc (about a minute), later ones take seconds.
# Debian: apt-get install golang-go golang-google-grpc-dev golang-google-protobuf-dev
#         golang-github-golang-protobuf-1-5-dev protoc-gen-go protoc-gen-go-grpc protobuf-compiler libprotobuf-dev
set -eu
cd "$(dirname "$0")"
work=$(mkdir -p "${1:-build}" && cd "${1:-build}" && pwd)
pkg=pushgate.example/pushgatev1
# The .proto files name no go_package: M options map each file (all of them: a new one must not
# break the build) to the one Go package of the stubs.
map=""
for file in $(cd ../../proto && ls pushgate/v1/*.proto); do
  map="$map --go_opt=M$file=$pkg --go-grpc_opt=M$file=$pkg"
done
mkdir -p "$work/src/pushgate.example/push" "$work/bin"
# shellcheck disable=SC2086 # $map is a list of options
protoc -I ../../proto -I /usr/include --go_out="$work/src" --go-grpc_out="$work/src" $map ../../proto/pushgate/v1/*.proto
cp push/main.go "$work/src/pushgate.example/push/"
GOPATH="$work:/usr/share/gocode" GO111MODULE=off go build -o "$work/bin/push" pushgate.example/push
