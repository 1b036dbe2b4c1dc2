#!/usr/bin/python3
# Packet crafter for the stateful differential (src/lab/stateful-differential.ts).
# Node has no raw sockets, so this small program, started once per network
# namespace, builds packets with scapy and sends them. It reads one JSON batch
# per line on stdin and answers one JSON line per batch on stdout:
#   in:  {"id": 3, "packets": [{"family": 4, "src": "...", "dst": "...", "proto": "tcp",
#          "sport": 1, "dport": 2, "flags": "SA", "seq": 1, "ack": 2, "payload": 10,
#          "tag": 77, "icmp": {"type": 3, "code": 3, "quote": {...a packet like this one...}},
#          "echo": {"type": 8, "id": 1, "seq": 1}, "nd": {"type": 135}}, ...]}
#   out: {"id": 3, "sent": [true, false, ...]}
# or, to build ahead and send later: {"id": 1, "prepare": [[...round 0...], [...round 1...]]},
# then {"id": 2, "round": 0}, {"id": 3, "round": 1} … each answered as above.
# "tag" goes in the IPv4 identification or the IPv6 flow label, so that the
# receiving side can tell every packet apart whatever its state.
#
# Two ways to send, chosen on the command line:
#   link IFACE MAC   as frames on IFACE to MAC (AF_PACKET): the sender's own
#                    netfilter never sees them (a peer, which filters nothing);
#   raw MARK         through IPPROTO_RAW sockets (header included) carrying
#                    MARK (SO_MARK): they go through the sender's output hook
#                    like any packet it sends, which is what the firewall must judge.
# Run by Debian's /usr/bin/python3, which has scapy.
import errno
import json
import socket
import sys

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NA, ICMPv6ND_NS,
                                ICMPv6PacketTooBig, IPv6)
from scapy.layers.l2 import Ether
from scapy.packet import Raw

SO_MARK = 36
ETH_P_IPV6 = 0x86DD
ETH_P_IP = 0x0800


def network(p):
    if p["family"] == 4:
        return IP(src=p["src"], dst=p["dst"], id=p.get("tag", 0) & 0xFFFF, ttl=64)
    # Neighbour discovery is sent with hop limit 255 (RFC 4861, 7.1.1).
    return IPv6(src=p["src"], dst=p["dst"], fl=p.get("tag", 0) & 0xFFFFF, hlim=255 if "nd" in p else 64)


def transport(p):
    proto = p["proto"]
    if proto == "tcp":
        seg = TCP(sport=p["sport"], dport=p["dport"], flags=p.get("flags", "S"), seq=p.get("seq", 0),
                  ack=p.get("ack", 0), window=64240)
    elif proto == "udp":
        seg = UDP(sport=p["sport"], dport=p["dport"])
    elif "nd" in p:
        # A unicast solicitation of the destination, or an advertisement of the source (RFC 4861, 4.3, 4.4).
        seg = ICMPv6ND_NS(tgt=p["dst"]) if p["nd"]["type"] == 135 else ICMPv6ND_NA(tgt=p["src"], R=0, S=1, O=0)
    elif "echo" in p:
        e = p["echo"]
        if p["family"] == 4:
            seg = ICMP(type=e["type"], id=e["id"], seq=e["seq"])
        else:
            seg = (ICMPv6EchoRequest if e["type"] == 128 else ICMPv6EchoReply)(id=e["id"], seq=e["seq"])
    else:
        seg = icmp_error(p)
    n = p.get("payload", 0)
    return seg / Raw(b"x" * n) if n else seg


def icmp_error(p):
    """An ICMP error quoting the packet it is about (RFC 792, RFC 4443 2.4)."""
    e = p["icmp"]
    quoted = network(e["quote"]) / transport(e["quote"])
    if p["family"] == 4:
        return ICMP(type=e["type"], code=e["code"]) / quoted
    if e["type"] == 2:
        return ICMPv6PacketTooBig(mtu=1280) / quoted
    return ICMPv6DestUnreach(code=e["code"]) / quoted


def build(p):
    return network(p) / transport(p)


class Link:
    def __init__(self, iface, mac):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        self.sock.bind((iface, 0))
        self.mac = mac

    def frame(self, p):
        return bytes(Ether(dst=self.mac, type=ETH_P_IP if p["family"] == 4 else ETH_P_IPV6) / build(p))

    def send(self, family, dst, data):
        self.sock.send(data)


class Raw3:
    def __init__(self, mark):
        self.socks = {}
        for family, af in ((4, socket.AF_INET), (6, socket.AF_INET6)):
            s = socket.socket(af, socket.SOCK_RAW, socket.IPPROTO_RAW)
            s.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
            self.socks[family] = s

    def frame(self, p):
        return bytes(build(p))

    def send(self, family, dst, data):
        self.socks[family].sendto(data, (dst, 0))


def main():
    mode = sys.argv[1]
    sender = Link(sys.argv[2], sys.argv[3]) if mode == "link" else Raw3(int(sys.argv[2], 0))
    print(json.dumps({"ready": True}), flush=True)
    prepared = []
    for line in sys.stdin:
        msg = json.loads(line)
        if "prepare" in msg:
            # Every round built ahead, while the caller sets the namespaces up: a round is then only sends.
            prepared = [[(p["family"], p["dst"], sender.frame(p)) for p in batch] for batch in msg["prepare"]]
            print(json.dumps({"id": msg["id"], "sent": []}), flush=True)
            continue
        batch = prepared[msg["round"]] if "round" in msg else [(p["family"], p["dst"], sender.frame(p)) for p in msg["packets"]]
        sent = []
        for family, dst, data in batch:
            try:
                sender.send(family, dst, data)
                sent.append(True)
            except OSError as e:
                # EPERM: netfilter dropped it on the way out (the sender's own output hook) — sent, and judged.
                sent.append(e.errno == errno.EPERM)
        print(json.dumps({"id": msg["id"], "sent": sent}), flush=True)


if __name__ == "__main__":
    main()
