// `swarmgate portmap`: the VPN provider's port forwarding for the client
// behind the kill switch. A NAT-PMP/PCP mapper (portmap/) asks the gateway
// for the client's port and keeps it renewed; each new external port is put
// into force in one step: the firewall's client port set swapped in place
// (the same transaction as `follow`), then the client told to listen there
// (qBittorrent's Web API, Transmission's RPC, or --hook), then one line. The
// mapping is recorded in the state directory for `swarmgate status`.
import { readFileSync } from "node:fs";
import { SwarmgateError, userError } from "../errors.js";
import type { FoundClient } from "../policy/auto-ports.js";
import { loadPolicy } from "../policy/load.js";
import type { Client, Policy } from "../policy/types.js";
import { startPortMapper, type Mapping, type PortMapper } from "../portmap/index.js";
import { requireRoot } from "../system/apply.js";
import { setClientPort, type ClientControl } from "../system/client-port.js";
import { followStep, readAhead } from "../system/follow.js";
import { DEFAULT_STATE_DIR, StateDir } from "../system/state.js";
import { formatAddress } from "../net/address.js";
import { detectHere, loadDetection, loadPolicyHere } from "./policy-path.js";
import type { CommonOptions } from "./report.js";

export interface PortmapOptions extends CommonOptions {
  stateDir?: string; wait?: number | string; gateway?: string; lifetime?: number; protocol?: "auto" | "natpmp" | "pcp";
  hook?: string[]; credentials?: string; url?: string;
}

/** What `swarmgate status` shows of the mapping (portmap.json in the state directory), rewritten at every renewal and failure. */
export interface PortmapRecord {
  protocol: string; gateway: string; externalAddress: string; externalPort: number; internalPort: number; lifetime: number;
  obtainedAt: string; renewAt: string; pid: number; client: string;
  /** Failed rounds since the last answer, and the last error; absent when the last round was answered. */
  failures?: number; lastError?: string;
}

const message = (e: unknown): string => (e instanceof SwarmgateError ? e.diagnostics.map((d) => d.message).join("; ") : (e as Error).message);

/** The one client whose port the mapping moves: the policy's `ports: auto` entry. */
function mappedClient(policy: Policy): Client {
  const auto = policy.clients.filter((c) => c.auto);
  if (auto.length !== 1) throw userError("CLI_USAGE", `portmap moves the port of the client behind the VPN, so the policy needs exactly one client with ports: auto (it has ${auto.length})`);
  return auto[0]!;
}

/** How to reach the client: --url, else its Web UI/RPC as detected (an address of "every address" is asked on loopback). */
function control(c: Client, o: PortmapOptions): ClientControl {
  const kind = c.auto!.kind;
  const credentials = o.credentials ? readCredentials(o.credentials) : undefined;
  if (o.hook?.length) return { kind, hook: o.hook };
  const found = detectHere().clients.find((f: FoundClient & { webui?: { port: number; address: string } | null }) => f.kind === kind && f.config === c.auto!.config) as { webui?: { port: number; address: string } | null } | undefined;
  const web = found?.webui;
  const host = !web || ["*", "0.0.0.0", "::", ""].includes(web.address) ? "127.0.0.1" : web.address.includes(":") ? `[${web.address}]` : web.address;
  const url = o.url ?? (web ? `http://${host}:${web.port}` : undefined);
  return { kind, ...(url && { url }), ...(credentials && { credentials }) };
}

function readCredentials(file: string): { username: string; password: string } {
  let text: string;
  try { text = readFileSync(file, "utf8"); } catch (e) { throw userError("CLI_USAGE", `cannot read --credentials ${file} (${(e as NodeJS.ErrnoException).code ?? "error"})`); }
  const line = text.split("\n")[0]!.replace(/\r$/, "");
  const colon = line.indexOf(":");
  if (colon <= 0) throw userError("CLI_USAGE", `--credentials ${file} must hold one line USER:PASSWORD`);
  return { username: line.slice(0, colon), password: line.slice(colon + 1) };
}

export async function runPortmap(file: string | undefined, o: PortmapOptions): Promise<number> {
  requireRoot("portmap", "changes the firewall");
  const stateDir = o.stateDir ?? process.env.SWARMGATE_STATE_DIR ?? DEFAULT_STATE_DIR;
  const state = new StateDir(stateDir);
  const path = file ?? state.record()?.policy;
  if (!path) throw userError("FOLLOW_REFUSED", "nothing is applied and no policy was given: apply a policy with a vpn section first");
  await loadDetection();
  const policy = await loadPolicyHere(path);
  const pf = policy.vpn?.portForwarding;
  if (!policy.vpn || !pf) throw userError("CLI_USAGE", `${path} has no vpn.port_forwarding: portmap asks the VPN's gateway for a port only when the policy says so`);
  const gateway = o.gateway ?? (pf.gateway && formatAddress(pf.gateway));
  if (!gateway) throw userError("CLI_USAGE", "the VPN's NAT-PMP/PCP gateway is unknown: set vpn.port_forwarding.gateway (ProtonVPN's is 10.2.0.1) or give --gateway");
  const client = mappedClient(policy);
  const ctl = control(client, o);
  const say = (line: string) => process.stdout.write(o.json ? `${JSON.stringify({ at: new Date().toISOString(), message: line })}\n` : `swarmgate portmap: ${line}\n`);
  const options = { stateDir, waitMs: o.wait !== undefined ? Number(o.wait) * 1000 : 60_000 };

  /** A new external port in force: the firewall first (so the port is open when the client moves), then the client. */
  const putInForce = async (m: Mapping) => {
    const started = performance.now();
    const ahead = readAhead(stateDir); // overlaps the policy's load
    const source = `mapped by ${m.protocol === "pcp" ? "PCP" : "NAT-PMP"} at ${gateway} (${m.externalAddress}:${m.externalPort})`;
    const mapped = loadPolicy(path, { autoPorts: (spec) => ({ ok: true, value: { spec, ports: { first: m.externalPort, last: m.externalPort }, source, warnings: [], kind: client.auto!.kind, config: client.auto!.config } }) });
    const step = await followStep(mapped, { ...options, ahead });
    const fw = performance.now();
    await setClientPort(ctl, m.externalPort);
    const done = performance.now();
    record(m);
    say(`${source} → client ${client.name} listens on ${m.externalPort}; firewall ${step.outcome === "moved" ? "changed in place" : "already open"} in ${(fw - started).toFixed(0)} ms, client set in ${(done - fw).toFixed(0)} ms`);
  };

  /** The record status reads: the mapping in force, its next renewal, and any failures since. */
  let last: PortmapRecord | undefined;
  const record = (m: Mapping | undefined, failure?: { failures: number; error: string; retryInMs: number }) => {
    const now = Date.now();
    if (m) last = { protocol: m.protocol, gateway, externalAddress: m.externalAddress, externalPort: m.externalPort, internalPort: m.internalPort, lifetime: m.lifetime,
      obtainedAt: new Date(now).toISOString(), renewAt: new Date(now + (m.renewAt - m.obtainedAt)).toISOString(), pid: process.pid, client: client.name };
    if (!last) return;
    const { failures: _f, lastError: _e, ...answered } = last;
    last = failure ? { ...answered, failures: failure.failures, lastError: failure.error, renewAt: new Date(now + failure.retryInMs).toISOString() } : answered;
    try { state.write("portmap.json", last); } catch { /* status only; the mapping works without it */ }
  };
  let mapper: PortMapper | undefined;
  let stopping = false;
  // Peers reach the external port and the client announces the port it listens on: the two must be one. A gateway
  // that grants another external port than the one asked for is asked again with that port as the internal one.
  const start = (internalPort: number, realigned: number) => {
    const m = startPortMapper({
      gateway, internalPort, protocol: o.protocol ?? pf.protocol, ...(o.lifetime !== undefined && { lifetime: o.lifetime }),
      // A round of 5 sends (about 8 s) rather than RFC 6886's 9 (over two minutes): with a 60 s lifetime a lost
      // renewal must be retried, and said, while the mapping still lives; failed rounds back off up to 30 s.
      natpmpTries: 5, retryMaxMs: 30_000,
      onMapping: async (mapping) => {
        if (mapping.externalPort !== internalPort && realigned < 2 && !stopping) {
          say(`the gateway maps ${mapping.externalPort} to ${internalPort}: asking for ${mapping.externalPort} → ${mapping.externalPort}, so that the port the client announces is the one peers reach`);
          setImmediate(() => { void m.stop().then(() => { if (!stopping) mapper = start(mapping.externalPort, realigned + 1); }); });
          return;
        }
        await putInForce(mapping);
      },
      onEvent: (e) => {
        if (e.type === "renewed") record(e.mapping);
        if (e.type === "retry") { record(undefined, { failures: e.failures, error: e.error, retryInMs: e.delayMs }); say(`no answer from the gateway (${e.error}); trying again in ${(e.delayMs / 1000).toFixed(0)} s (failure ${e.failures})`); }
        else if (e.type === "gateway-restart") say(`the gateway restarted (${e.reason}): mapping again`);
        else if (e.type === "fallback") say(`falling back to NAT-PMP (${e.reason})`);
      },
    });
    return m;
  };
  say(`asking ${gateway} (${o.protocol ?? pf.protocol}) for client ${client.name}'s port ${client.ports.first}`);
  mapper = start(client.ports.first, 0);
  await new Promise<void>((done) => {
    const stop = () => { stopping = true; done(); };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  await mapper.stop().catch((e) => say(`deleting the mapping failed: ${message(e)}`));
  state.remove("portmap.json");
  say("stopped; the mapping is deleted, the firewall keeps the port it has");
  return 0;
}
