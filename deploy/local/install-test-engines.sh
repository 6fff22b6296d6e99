#!/usr/bin/env bash
# Installs the real engines the test suite talks to, on a fresh Debian machine (run as root):
#   - Debian's chromium, driven headless by playwright-core for the dashboard tests and the report's PDF
#   - poppler-utils (pdftoppm, pdftotext), with which the report tests read the PDF back
#   - Debian's Go toolchain and golang.org/x/mod (sumdb/tlog, sumdb/note) for the transparency-log interop tests
#   - Apache Kafka's jars from Maven Central (cached), for the broker the Kafka tests start
#   - the kernel oracle's Linux kernels, built from Debian's linux-source-6.12 and linux-source-6.1 with QEMU and
#     busybox-static (cached by config and source version: ~17 min cold each on 2 cores, seconds later)
# chdb needs nothing here: its engine ships inside the npm package.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export DEBIAN_FRONTEND=noninteractive

# Debian packages, with the package lists refreshed once per run (never the machine's apt sources)
lists_fresh=
apt_install() {
  echo "install-test-engines: installing Debian $*"
  [ -n "$lists_fresh" ] || { apt-get update -qq; lists_fresh=1; }
  apt-get install -y -qq "$@" >/dev/null
}

if ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium
fi
chromium --version

# poppler-utils: the report tests render the PDF's pages to PNG (pdftoppm) and read its text back (pdftotext)
if ! command -v pdftoppm >/dev/null 2>&1 || ! command -v pdftotext >/dev/null 2>&1; then
  apt_install --no-install-recommends poppler-utils
fi

# Go's sumdb/tlog and sumdb/note: the second, independent implementation the transparency-log tests check
# our Merkle proofs and signed checkpoints against (services/shared/eventStore/sqlite/tamper/testing/tlogcheck)
if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/golang.org/x/mod/sumdb/tlog ]; then
  apt_install --no-install-recommends golang-go golang-golang-x-mod-dev
fi
go version

if [ -x "$here/../kafka/fetch-kafka.sh" ]; then
  "$here/../kafka/fetch-kafka.sh"
fi

# every kernel release the oracle boots (deploy/kernel-oracle/kernels), each built once and cached
if [ -x "$here/../kernel-oracle/build-kernel.sh" ]; then
  # (a for loop, not `| while read`: apt-get inside the build could swallow the rest of the list from stdin)
  for pkg in $(grep -v -e '^#' -e '^ *$' "$here/../kernel-oracle/kernels"); do
    KERNEL_SOURCE_PKG="$pkg" "$here/../kernel-oracle/build-kernel.sh" </dev/null
  done
fi
