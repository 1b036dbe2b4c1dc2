#!/bin/sh
# Installs what is missing, builds, and runs the whole test suite (as root:
# the kernel tests create network namespaces).
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
sh scripts/test-programs.sh
npm test --silent
