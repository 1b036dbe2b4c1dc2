// ICMP that the network needs is never dropped: errors (path MTU discovery,
// unreachable ports) and, for IPv6, neighbour discovery and multicast listener
// messages (RFC 4890). Echo requests are allowed, rate-limited, or denied.
import { ICMP_TYPE } from "../ir/icmp.js";
import type { Rule } from "../ir/ruleset.js";
import type { Policy } from "../policy/types.js";
import { ACCEPT, icmpTypes, rule, type Contribution } from "./build.js";

const { v4, v6 } = ICMP_TYPE;
const ERRORS4 = [v4.unreachable, v4.timeExceeded, v4.parameterProblem];
const ERRORS6 = [v6.unreachable, v6.packetTooBig, v6.timeExceeded, v6.parameterProblem];
const ND_IN_HOST = [v6.routerAdvert, v6.neighborSolicit, v6.neighborAdvert, v6.mldQuery, v6.mldReport, v6.mld2Report];
const ND_IN_ROUTER = [v6.routerSolicit, ...ND_IN_HOST];
const ND_OUT = [v6.routerSolicit, v6.routerAdvert, v6.neighborSolicit, v6.neighborAdvert, v6.mldReport, v6.mld2Report];

const ECHO_RATE = { count: 5, unit: "second" as const, burst: 10 };

export function icmp(p: Policy): Contribution {
  const router = p.role === "gateway";
  const input: Rule[] = [
    rule([icmpTypes(4, ERRORS4)], ACCEPT, "", "ICMP errors (unreachable, time exceeded, parameter problem)"),
    rule([icmpTypes(6, ERRORS6)], ACCEPT, "", "ICMPv6 errors, packet too big included (path MTU discovery)"),
    rule([icmpTypes(6, router ? ND_IN_ROUTER : ND_IN_HOST)], ACCEPT, "", "ICMPv6 neighbour discovery and multicast listener messages"),
  ];
  const output: Rule[] = [
    rule([icmpTypes(4, ERRORS4)], ACCEPT, "", "ICMP errors sent by this machine"),
    rule([icmpTypes(6, ERRORS6)], ACCEPT, "", "ICMPv6 errors sent by this machine"),
    rule([icmpTypes(6, ND_OUT)], ACCEPT, "", "ICMPv6 neighbour discovery and multicast listener reports"),
  ];
  // A router must pass on the errors that path MTU discovery depends on, even
  // when they belong to no tracked connection.
  const forward: Rule[] = router
    ? [rule([icmpTypes(6, ERRORS6)], ACCEPT, "", "forward ICMPv6 errors, packet too big included")]
    : [];
  if (p.icmp === "allow") {
    const limit = { kind: "limit" as const, ...ECHO_RATE };
    input.push(
      rule([icmpTypes(4, [v4.echoRequest]), limit], ACCEPT, "icmp", "ping: ICMP echo requests, at most 5/second"),
      rule([icmpTypes(6, [v6.echoRequest]), limit], ACCEPT, "icmp", "ping: ICMPv6 echo requests, at most 5/second"),
    );
    output.push(
      rule([icmpTypes(4, [v4.echoRequest])], ACCEPT, "icmp", "ping: ICMP echo requests sent by this machine"),
      rule([icmpTypes(6, [v6.echoRequest])], ACCEPT, "icmp", "ping: ICMPv6 echo requests sent by this machine"),
    );
  }
  return { input, output, forward };
}
