// What makes a ruleset a NAT gateway's, read off its rules (the exposure
// shows where connections go, not how addresses were rewritten): the DNATs
// of arriving packets (prerouting NAT chains and the chains they jump to),
// the masquerades and SNATs of leaving ones (postrouting), and the forward
// hook's accepts with the interfaces they name.
import type { Address } from "../net/address.js";
import type { PortRange } from "../net/port.js";
import type { Prefix } from "../net/prefix.js";
import type { Hook, Rule, Ruleset } from "../ir/ruleset.js";
import type { Transport } from "../ir/match.js";

export interface Dnat {
  to: Address;
  /** The port it rewrites to, when it rewrites the port. */
  port?: number;
  protocol?: Transport;
  /** The destination ports it takes; empty: every port. */
  dports: readonly PortRange[];
  /** The interface it takes packets from (not negated, not a wildcard). */
  iif?: string;
  /** It tests the source (address or port): only some peers are rewritten. */
  sourceLimited: boolean;
  path: string;
}

export interface SourceNat { oif?: string; saddr: readonly Prefix[]; path: string }

export interface ForwardAccept { iif?: string; oif?: string; saddr: readonly Prefix[]; path: string }

export interface GatewayNat { dnats: Dnat[]; masquerades: SourceNat[]; accepts: ForwardAccept[] }

/** Interfaces of containers, VMs and tunnels: a DNAT or forward there makes no gateway (Docker publishes ports so). */
export const VIRTUAL = /^(lo|docker\d*|br-[0-9a-f]{12}|virbr|veth|cni|flannel|tun|tap|wg|vnet|lxc)/;

/** Every rule reached from the base chains on a hook (of a type), jumps followed once. */
function rulesOnHook(ruleset: Ruleset, hook: Hook, type: "nat" | "filter"): Rule[] {
  const out: Rule[] = [];
  for (const t of ruleset.tables) {
    const byName = new Map(t.chains.map((c) => [c.name, c]));
    const seen = new Set<string>();
    const visit = (name: string) => {
      if (seen.has(name)) return;
      seen.add(name);
      for (const r of byName.get(name)?.rules ?? []) {
        out.push(r);
        if (r.verdict.kind === "jump" || r.verdict.kind === "goto") visit(r.verdict.chain);
      }
    };
    for (const c of t.chains) if (c.base?.hook === hook && c.base.type === type) visit(c.name);
  }
  return out;
}

const named = (r: Rule, kind: "iifname" | "oifname") => {
  const m = r.matches.find((x) => x.kind === kind);
  return m && (m.kind === "iifname" || m.kind === "oifname") && !m.negate && !m.wildcard ? m.name : undefined;
};
const sources = (r: Rule) => r.matches.flatMap((m) => (m.kind === "saddr" ? m.prefixes : []));

export function readGatewayNat(ruleset: Ruleset): GatewayNat {
  const dnats: Dnat[] = [];
  for (const r of rulesOnHook(ruleset, "prerouting", "nat")) {
    if (r.verdict.kind !== "dnat") continue;
    const d = r.matches.find((m) => m.kind === "dport");
    const p = r.matches.find((m) => m.kind === "protocol");
    const protocol = d?.kind === "dport" ? d.protocol : p?.kind === "protocol" && (p.protocol === "tcp" || p.protocol === "udp") ? p.protocol : undefined;
    const iif = named(r, "iifname");
    dnats.push({
      to: r.verdict.to, ...(r.verdict.port !== undefined && { port: r.verdict.port }), ...(protocol && { protocol }),
      dports: d?.kind === "dport" ? d.ranges : [], ...(iif && { iif }),
      sourceLimited: r.matches.some((m) => m.kind === "saddr" || m.kind === "sport"), path: r.origin.path,
    });
  }
  const masquerades = rulesOnHook(ruleset, "postrouting", "nat").filter((r) => r.verdict.kind === "masquerade" || r.verdict.kind === "snat")
    .map((r) => { const oif = named(r, "oifname"); return { ...(oif && { oif }), saddr: sources(r), path: r.origin.path }; });
  const accepts = rulesOnHook(ruleset, "forward", "filter").filter((r) => r.verdict.kind === "accept" && !r.matches.some((m) => m.kind === "ctstate"))
    .map((r) => { const iif = named(r, "iifname"); const oif = named(r, "oifname"); return { ...(iif && { iif }), ...(oif && { oif }), saddr: sources(r), path: r.origin.path }; });
  return { dnats, masquerades, accepts };
}

/** Whether the ruleset is a gateway's: it DNATs what arrives on a real interface, or forwards between two. */
export function isGateway(nat: GatewayNat): boolean {
  return nat.dnats.some((d) => d.iif !== undefined && !VIRTUAL.test(d.iif))
    || nat.accepts.some((a) => a.iif !== undefined && a.oif !== undefined && a.iif !== a.oif && !VIRTUAL.test(a.iif) && !VIRTUAL.test(a.oif));
}

/** The WAN: the interface the DNATs take packets from most, else the one masquerade leaves by. */
export function wanOf(nat: GatewayNat): string | undefined {
  const count = new Map<string, number>();
  for (const d of nat.dnats) if (d.iif && !VIRTUAL.test(d.iif)) count.set(d.iif, (count.get(d.iif) ?? 0) + 1);
  return [...count].sort((a, b) => b[1] - a[1])[0]?.[0] ?? nat.masquerades.find((m) => m.oif && !VIRTUAL.test(m.oif))?.oif;
}
