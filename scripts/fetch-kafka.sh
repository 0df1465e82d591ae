#!/usr/bin/env bash
# Fetches the Apache Kafka broker jars the integration tests run, from
# Maven Central through .ci/kafka/pom.xml, into
#   ${NOVACRON_TEST_CACHE:-<repo>/.cache}/kafka-${KAFKA_VERSION}/libs
# and prints that directory. Idempotent: a completed download is reused,
# and concurrent runs wait for each other.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=${KAFKA_VERSION:-4.4.0}
cache=${NOVACRON_TEST_CACHE:-$root/.cache}
dest=$cache/kafka-$version

mkdir -p "$cache"
exec 9>"$cache/kafka-$version.lock"
flock 9

if [ ! -f "$dest/.complete" ]; then
	command -v mvn >/dev/null || { echo "fetch-kafka: mvn not found (apt-get install maven)" >&2; exit 1; }
	tmp=$(mktemp -d "$cache/kafka-$version.tmp.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	mvn -q -B -Dstyle.color=never -f "$root/.ci/kafka/pom.xml" -Dkafka.version="$version" \
		dependency:copy-dependencies -DoutputDirectory="$tmp/libs" >&2
	ls "$tmp/libs/kafka_2.13-$version.jar" >/dev/null
	rm -rf "$dest"
	mv "$tmp" "$dest"
	trap - EXIT
	touch "$dest/.complete"
fi
echo "$dest/libs"
