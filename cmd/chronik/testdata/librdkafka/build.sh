#!/usr/bin/env bash
# Builds a current librdkafka into DIR (DIR/librdkafka.so.1) for the client
# tests, which load it into kcat and confluent-kafka-python in place of
# Debian's librdkafka 2.0 (CHRONIK_LIBRDKAFKA=DIR). The source is the
# librdkafka release that @confluentinc/kafka-javascript bundles, taken from
# the npm registry (npm checks the tarball against the registry's
# integrity). Needs gcc, make and npm; zstd when libzstd-dev is installed.
set -euo pipefail
out=${1:?usage: build.sh DIR}
package=@confluentinc/kafka-javascript@1.10.1 # librdkafka 2.15.1

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tgz=$(cd "$work" && npm pack --silent --loglevel=error "$package")
tar xzf "$work/$tgz" -C "$work" package/deps/librdkafka
cd "$work/package/deps/librdkafka"
./configure --disable-ssl --disable-gssapi --disable-curl >"$work/configure.log" 2>&1 ||
	{ cat "$work/configure.log" >&2; exit 1; }
make -j"$(nproc)" -C src >"$work/make.log" 2>&1 || { tail -50 "$work/make.log" >&2; exit 1; }
cp src/librdkafka.so.1 "$out/"
echo "built $out/librdkafka.so.1 from $package"
