// ICMP and ICMPv6 message types by number, with the names nft and iptables use.
// Sources: nft(8) "ICMP TYPE", iptables-extensions(8) "icmp6", RFC 4443, RFC 4861, RFC 3810.

interface IcmpName { nft: string; iptables: string }

export const ICMP4: Record<number, IcmpName> = {
  0: { nft: "echo-reply", iptables: "echo-reply" },
  3: { nft: "destination-unreachable", iptables: "destination-unreachable" },
  8: { nft: "echo-request", iptables: "echo-request" },
  11: { nft: "time-exceeded", iptables: "time-exceeded" },
  12: { nft: "parameter-problem", iptables: "parameter-problem" },
};

export const ICMP6: Record<number, IcmpName> = {
  1: { nft: "destination-unreachable", iptables: "destination-unreachable" },
  2: { nft: "packet-too-big", iptables: "packet-too-big" },
  3: { nft: "time-exceeded", iptables: "time-exceeded" },
  4: { nft: "parameter-problem", iptables: "parameter-problem" },
  128: { nft: "echo-request", iptables: "echo-request" },
  129: { nft: "echo-reply", iptables: "echo-reply" },
  130: { nft: "mld-listener-query", iptables: "130" },
  131: { nft: "mld-listener-report", iptables: "131" },
  133: { nft: "nd-router-solicit", iptables: "router-solicitation" },
  134: { nft: "nd-router-advert", iptables: "router-advertisement" },
  135: { nft: "nd-neighbor-solicit", iptables: "neighbour-solicitation" },
  136: { nft: "nd-neighbor-advert", iptables: "neighbour-advertisement" },
  143: { nft: "mld2-listener-report", iptables: "143" },
};

export const ICMP_TYPE = {
  v4: { echoRequest: 8, unreachable: 3, timeExceeded: 11, parameterProblem: 12 },
  v6: {
    unreachable: 1, packetTooBig: 2, timeExceeded: 3, parameterProblem: 4, echoRequest: 128,
    mldQuery: 130, mldReport: 131, routerSolicit: 133, routerAdvert: 134, neighborSolicit: 135,
    neighborAdvert: 136, mld2Report: 143,
  },
} as const;

export function icmpName(family: 4 | 6, type: number, backend: "nft" | "iptables"): string {
  const entry = (family === 4 ? ICMP4 : ICMP6)[type];
  return entry ? entry[backend] : String(type);
}
