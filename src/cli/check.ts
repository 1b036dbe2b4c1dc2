// `swarmgate check`: validate a policy and show, on one screen, what it opens to whom.
import { openings, type Opening } from "../analyze/openings.js";
import { compile } from "../compile/index.js";
import { clientPortWarnings } from "../analyze/client-ports.js";
import { formatPortRange } from "../net/port.js";
import type { Policy } from "../policy/types.js";
import { detectHere, loadDetection, resolvePolicyPath, loadPolicyHere } from "./policy-path.js";
import { printJson, type CommonOptions } from "./report.js";

const HEADINGS: Record<Opening["direction"], string> = {
  inbound: "New connections this machine accepts",
  "port-forward": "Ports forwarded from the WAN address",
  forwarded: "New connections this gateway forwards",
  outbound: "New connections this machine may open",
};

export async function runCheck(file: string | undefined, opts: CommonOptions): Promise<number> {
  const path = resolvePolicyPath(file);
  const policy = await loadPolicyHere(path);
  if (wantsClientWarnings(policy)) await loadDetection();
  const open = openings(compile(policy));
  const auto = autoPortLines(policy);
  if (opts.json) {
    printJson({ ok: true, file: path, role: policy.role, openings: open, otherwise: "drop", log: policy.log, autoPorts: auto.json, clientWarnings: auto.warnings });
    return 0;
  }
  const lines = [`${path}: valid ${describeRole(policy)}`, ...auto.text];
  for (const direction of ["inbound", "port-forward", "forwarded", "outbound"] as const) {
    const rows = open.filter((o) => o.direction === direction);
    if (rows.length === 0) {
      if (direction === "outbound" && policy.outbound.any) lines.push("", `${HEADINGS.outbound}: all (outbound is not restricted)`);
      continue;
    }
    const peerTitle = direction === "outbound" ? "to" : "from";
    lines.push("", `${HEADINGS[direction]}:`, ...table([["proto", "port/type", peerTitle, "via", "family", "why"],
      ...rows.map((o) => [o.protocol, o.ports, o.peers, o.via, o.families, o.why])]));
  }
  const log = policy.log ? `logged (${policy.log.rate.count}/${policy.log.rate.unit}, prefix "${policy.log.prefix}") and dropped` : "dropped (not logged)";
  lines.push("", `Everything else: ${log}. Replies to allowed connections, loopback, ICMP errors and IPv6 neighbour discovery are always allowed.`);
  process.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}

/** `ports: auto` entries: the port found, where it came from, and what the user should know (check and audit). */
/** A host policy with written ports is compared with the clients here (loadDetection() first). */
export const wantsClientWarnings = (p: Policy): boolean => p.role === "host" && p.clients.length > 0 && !p.clients.some((c) => c.auto);

/** And for a host policy with written ports: the clients here that use another port, or a random one. */
export function autoPortLines(p: Policy): { text: string[]; json: { path: string; client: string; ports: string; source: string; warnings: string[] }[]; warnings: string[] } {
  const json = p.clients.flatMap((c) => (c.auto ? [{ path: `${c.path}.ports`, client: c.name, ports: formatPortRange(c.ports), source: c.auto.source, warnings: c.auto.warnings }] : []));
  const warnings = wantsClientWarnings(p) ? clientPortWarnings(p.clients, detectHere().clients) : [];
  const text = [
    ...(json.length ? ["", "Ports read from the clients (ports: auto):", ...json.flatMap((a) => [`  ${a.path}  ${a.client}: ${a.ports}, from ${a.source}`, ...a.warnings.map((w) => `    warning: ${w}`)])] : []),
    ...(warnings.length ? ["", "The BitTorrent clients here:", ...warnings.map((w) => `  warning: ${w}`)] : []),
  ];
  return { text, json, warnings };
}

function describeRole(p: Policy): string {
  if (p.role === "gateway") {
    const gw = p.gateway!;
    return `gateway policy: WAN ${gw.wan}, LAN ${gw.lan}, ${p.forward.length} forward(s)${gw.masquerade ? ", masquerade" : ""}`;
  }
  const iface = p.host?.interface ? ` on ${p.host.interface}` : " on every interface";
  return `host policy${iface}, ${p.clients.length} client(s), ${p.admin.length} admin service(s), IPv4 and IPv6`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => `  ${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")}`.trimEnd());
}
