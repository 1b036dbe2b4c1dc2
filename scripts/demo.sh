#!/bin/sh
# Installs what is missing, builds, then shows what the bundled standalone
# example opens to whom and rehearses it: the compiled ruleset is loaded into
# a sandbox of network namespaces and every flow is tried with real sockets.
# Needs root (namespaces); the machine's own network and firewall are untouched.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
node dist/cli/main.js check examples/standalone.yaml
echo
node dist/cli/main.js rehearse examples/standalone.yaml
