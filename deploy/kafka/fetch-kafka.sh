#!/usr/bin/env bash
# Resolves Apache Kafka's broker (org.apache.kafka:kafka_2.13 and its runtime dependencies) from Maven Central with
# Maven, into a cache folder that later runs reuse without downloading again. Prints the folder holding the jars.
#   KAFKA_VERSION    broker version (default: the one pom.xml pins)
#   IOMMUTRAIL_CACHE cache root (default: ~/.cache/iommutrail)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
default_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
version="${KAFKA_VERSION:-$default_version}"
cache_root="${IOMMUTRAIL_CACHE:-$HOME/.cache/iommutrail}"
libs="$cache_root/kafka-$version/libs"

if [ -f "$libs/.complete" ] && [ -f "$libs/kafka_2.13-$version.jar" ] && [ -f "$libs/kafka-tools-$version.jar" ]; then
  echo "$libs"
  exit 0
fi
command -v mvn >/dev/null 2>&1 || { echo "fetch-kafka: mvn not found (Maven resolves the broker jars)" >&2; exit 69; }
command -v java >/dev/null 2>&1 || { echo "fetch-kafka: java not found (the broker runs on a JVM, 17+)" >&2; exit 69; }

echo "fetch-kafka: resolving org.apache.kafka:kafka_2.13:$version into $libs" >&2
tmp="$libs.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
# a pom packaging project: copy-dependencies needs no build, only resolution
mvn -q -B -f "$here/pom.xml" -Dkafka.version="$version" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$tmp" >&2
touch "$tmp/.complete"
rm -rf "$libs"
mv "$tmp" "$libs"
trap - EXIT
echo "$libs"
