#!/usr/bin/env bash
# Installs the real engines the test suite talks to, on a fresh Debian machine (run as root):
#   - Debian's chromium, driven headless by playwright-core for the dashboard tests
#   - Apache Kafka's jars from Maven Central (cached), for the broker the Kafka tests start
#   - the kernel oracle's Linux kernel, built from Debian's linux-source-6.12 with QEMU and busybox-static
#     (cached by config and source version: ~17 min cold on 2 cores, seconds later)
# chdb needs nothing here: its engine ships inside the npm package.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if ! command -v chromium >/dev/null 2>&1; then
  echo "install-test-engines: installing Debian chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
chromium --version

if [ -x "$here/../kafka/fetch-kafka.sh" ]; then
  "$here/../kafka/fetch-kafka.sh"
fi

if [ -x "$here/../kernel-oracle/build-kernel.sh" ]; then
  "$here/../kernel-oracle/build-kernel.sh"
fi
