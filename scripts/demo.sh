#!/bin/sh
# Installs what is missing, builds, then checks and compiles the bundled
# standalone example: what it opens to whom, and the nftables ruleset.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
node dist/cli/main.js check examples/standalone.yaml
echo
node dist/cli/main.js compile examples/standalone.yaml --backend nft
