#!/bin/sh
# Installs, idempotently, the real programs the kernel tests run inside their
# sandboxes: BitTorrent clients and a tracker (client detection, real swarm),
# a packet crafter (invalid packets and TCP flag combinations in the
# differential tests), WireGuard in user space and a NAT-PMP server and client
# (VPN kill switch and port mapping), ipset and curl. swarmgate itself needs
# none of them.
# Scapy is Debian's: tests run it with /usr/bin/python3, whatever python3 is first on PATH.
set -eu

need=""
want() { command -v "$1" >/dev/null 2>&1 || need="$need $2"; }
want qbittorrent-nox qbittorrent-nox
want transmission-daemon transmission-daemon
want deluged deluged
want rtorrent rtorrent
want aria2c aria2
want mktorrent mktorrent
want opentracker opentracker
want wireguard-go wireguard-go
want wg wireguard-tools
want miniupnpd miniupnpd-nftables
want natpmpc natpmpc
want iperf3 iperf3
# ipset: the fail2ban-like fixture's sets are restored into the sandbox (test/foreign.test.ts); curl: the clients' Web APIs.
want ipset ipset
want curl curl
/usr/bin/python3 -c 'import scapy' >/dev/null 2>&1 || need="$need python3-scapy"
[ -z "$need" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "test-programs: missing$need; run this as root (or install them) first" >&2
  exit 2
fi
echo "test-programs: installing$need"
# Packages such as transmission-daemon start their service when installed; on a
# test machine nothing may listen outside the sandboxes, so tell invoke-rc.d no
# for the duration (unless the machine already says so).
made_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  made_policy=yes
fi
trap '[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
