#!/bin/sh
# Installs what swarmgate needs on a Debian machine, idempotently, then builds it.
# System tools: nftables, iptables, iproute2, iputils-ping, systemd (for systemd-analyze), procps (sysctl),
# and Node.js 20+ with npm when missing.
set -eu
cd "$(dirname "$0")/.."

need=""
command -v nft >/dev/null 2>&1 || need="$need nftables"
command -v iptables-restore >/dev/null 2>&1 || need="$need iptables"
command -v ip >/dev/null 2>&1 || need="$need iproute2"
command -v ping >/dev/null 2>&1 || need="$need iputils-ping"
command -v systemd-analyze >/dev/null 2>&1 || need="$need systemd"
command -v sysctl >/dev/null 2>&1 || need="$need procps"
command -v node >/dev/null 2>&1 || need="$need nodejs"
command -v npm >/dev/null 2>&1 || need="$need npm"
if [ -n "$need" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing$need; run this as root (or install them) first" >&2
    exit 2
  fi
  echo "setup: installing$need"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "setup: swarmgate needs Node.js 20 or newer; this machine has $(node --version)" >&2
  exit 2
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm install, not npm ci: with this registry set-up the lock file leaves out
  # other platforms' optional packages, which npm ci then reports as missing.
  npm install --no-audit --no-fund --loglevel=error
fi
npm run --silent build
