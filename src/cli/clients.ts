// `swarmgate clients`: the BitTorrent clients of this machine (or of a tree
// below --root), what their configs say and what they listen on now.
import { statSync } from "node:fs";
import { detectClients, type ClientReport, type Detection } from "../clients/index.js";
import { displayValue, formatDiagnostic, userError } from "../errors.js";
import { printJson } from "./report.js";

export interface ClientsOptions { json?: boolean; root?: string }

export function runClients(opts: ClientsOptions): number {
  if (opts.root !== undefined) checkRoot(opts.root);
  const found: Detection = detectClients({ root: opts.root });
  if (opts.json) printJson(found);
  else process.stdout.write(text(found));
  return found.problems.length > 0 ? 1 : 0;
}

function checkRoot(root: string): void {
  let isDir = false;
  try {
    isDir = statSync(root).isDirectory();
  } catch { /* reported below */ }
  if (!isDir) throw userError("CLIENT_ROOT_INVALID", `--root must be a directory; "${displayValue(root)}" is not one`);
}

function text(d: Detection): string {
  const lines: string[] = [];
  if (d.clients.length === 0) lines.push("No BitTorrent client config found and none running here.");
  for (const c of d.clients) lines.push(...describe(c), "");
  for (const p of d.problems) lines.push(formatDiagnostic({ code: p.code, message: `${p.kind}: ${p.message}`, file: p.file, line: p.line, column: p.column }));
  return `${lines.join("\n").trimEnd()}\n`;
}

function describe(c: ClientReport): string[] {
  const range = (r: { from: number; to: number }) => (r.from === r.to ? String(r.from) : `${r.from}-${r.to}`);
  const on = (b: boolean) => (b ? "on" : "off");
  const bind = (c.bind.interface ?? (c.bind.addresses.length ? c.bind.addresses.join(", ") : "every address")) + (c.bind.outgoing ? `, connects out by ${c.bind.outgoing}` : "");
  const lines = [
    `${c.kind} (${displayValue(c.config || "command line", 200)}, user ${c.user ?? "?"})`,
    `  peer port  ${range(c.ports)} ${c.protocols.join("+") || "not listening"}${c.random ? " (random: changes at the next start)" : ""}`,
    `  DHT ${on(c.dht)}${c.dhtPorts ? ` (UDP ${range(c.dhtPorts)})` : ""}, LSD ${on(c.lsd)}, UPnP/NAT-PMP ${on(c.natpmp)}; binds ${displayValue(bind)}`,
  ];
  if (c.webui) lines.push(`  web UI/RPC ${c.webui.port} on ${displayValue(c.webui.address)}`);
  const listening = c.listening.map((l) => `${l.protocol} ${l.address.includes(":") ? `[${l.address}]` : l.address}:${l.port}`);
  lines.push(`  listening  ${listening.length ? listening.join(", ") : "not running in this network namespace"}`);
  return lines;
}
