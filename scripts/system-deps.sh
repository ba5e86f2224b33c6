#!/usr/bin/env bash
# The Debian packages the test suite needs beyond npm: a redis-server for cluster-mode tests, protoc
# with the Python gRPC plugin and python3-grpcio for the polyglot tests and examples/python, Go with
# its gRPC and protobuf libraries and protoc plugins for examples/go, and chromium for the browser
# test. Installs whatever is missing when it can (root or sudo, apt-get), so `npm test` on a
# fresh Debian machine needs nothing by hand; elsewhere it prints the command and fails.
set -euo pipefail

missing=()
installed() { # installed <debian-package>: dpkg knows it as installed (not merely configured once)
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}
need() { # need <debian-package> <check command...>
  local pkg=$1
  shift
  if ! "$@" >/dev/null 2>&1; then missing+=("$pkg"); fi
}
need redis-server command -v redis-server
need protobuf-compiler test -x /usr/bin/protoc
need protobuf-compiler-grpc test -x /usr/bin/grpc_python_plugin
need libprotobuf-dev test -f /usr/include/google/protobuf/struct.proto
need python3 test -x /usr/bin/python3
# Debian's own python3 on purpose: another python3 (pyenv) may come first on PATH.
need python3-grpcio /usr/bin/python3 -c 'import grpc'
need python3-protobuf /usr/bin/python3 -c 'import google.protobuf'
need chromium test -x /usr/bin/chromium
# The Go example (examples/go), built in GOPATH mode from Debian's Go libraries: no module proxy.
need golang-go test -x /usr/bin/go
need golang-google-grpc-dev test -f /usr/share/gocode/src/google.golang.org/grpc/version.go
need golang-google-protobuf-dev test -d /usr/share/gocode/src/google.golang.org/protobuf/proto
# 1.5, not the 1.3 package it replaces: with 1.3, grpc's codec crashes on structpb values.
need golang-github-golang-protobuf-1-5-dev installed golang-github-golang-protobuf-1-5-dev
need protoc-gen-go test -x /usr/bin/protoc-gen-go
need protoc-gen-go-grpc test -x /usr/bin/protoc-gen-go-grpc
# A recommendation of chromium, not a dependency: without any font, pages render no text.
need fonts-liberation test -d /usr/share/fonts/truetype/liberation

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
echo "system-deps: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null || ! sudo -n true 2>/dev/null; then
    echo "system-deps: missing Debian packages; install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  sudo=(sudo -n)
fi
if ! command -v apt-get >/dev/null; then
  echo "system-deps: no apt-get here; install the equivalents of: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system-deps: installed ${missing[*]}" >&2
