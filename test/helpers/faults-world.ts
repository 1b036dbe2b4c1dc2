// The fixed points of the fault matrix, captured once from clean runs of the
// real CLI: per backend, what the kernel holds with no policy, the gateway
// policy and the host policy (references), and the namespaces' kernels and
// state directories after those applies (templates). A trial starts from a
// template restored with the real tools into a fresh namespace — a copy of
// what swarmgate left, far cheaper than running swarmgate again.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { createNetns, deleteNetns, type Netns } from "../../src/system/netns.js";
import { FOREIGN_NFT } from "./kernel.js";
import { FIREWALLD_NFT, loadForeign } from "./faults-foreign.js";
import { observe, SETTINGS, type Observed, type Units } from "./faults-kernel.js";
import { printed, swarmgateIn } from "./faults-run.js";

export type Backend = "nft" | "iptables";
export type Label = "none" | "gateway" | "standalone";
export const POLICY = { gateway: "examples/gateway.yaml", standalone: "examples/standalone.yaml" } as const;

/** What swarmgate's objects and the kernel settings are when a label is in force. */
export interface Reference { units: Units; settings: Record<string, string> }

/** A namespace's kernel and state directory after a chain of applies. */
interface Template { v4: string; v6: string; ours: string; settings: Record<string, string>; files: Map<string, string> }

export interface World {
  refs: Record<Backend, Record<Label, Reference>>;
  templates: Map<string, Template>;
}

export const templateKey = (backend: Backend, chain: readonly Label[]) => `${backend}:${chain.join(",") || "none"}`;

/** Forwarding off, as every trial starts: the settings "before swarmgate". */
export async function pristine(ns: Netns): Promise<void> {
  await ns.execChecked("sysctl", ["-q", "-w", "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"]);
}

function readTree(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name !== "lock") files.set(relative(dir, p), readFileSync(p, "utf8"));
    }
  };
  walk(dir);
  return files;
}

async function capture(ns: Netns, sd: string | undefined): Promise<Template> {
  const [v4, v6, ours, o] = await Promise.all([ns.execChecked("iptables-save", []), ns.execChecked("ip6tables-save", []), ns.exec("nft", ["list", "table", "inet", "swarmgate"]), observe(ns)]);
  return { v4: v4.stdout, v6: v6.stdout, ours: ours.code === 0 ? ours.stdout : "", settings: o.settings, files: sd ? readTree(sd) : new Map() };
}

const reference = (o: Observed): Reference => ({ units: o.units, settings: o.settings });

async function applyClean(ns: Netns, sd: string, backend: Backend, label: Exclude<Label, "none">): Promise<Observed> {
  const args = ["apply", POLICY[label], "-b", backend, "--state-dir", sd];
  const r = await swarmgateIn(ns, args, {});
  const o = await observe(ns);
  if (r.code !== 0 || o.problems.length) throw new Error(`clean run failed: ${printed("reference", args, r)}\n${o.problems.join("\n")}`);
  return o;
}

/** One backend's references and templates: gateway then host in one state directory, host alone in another. */
async function buildBackend(backend: Backend, world: World): Promise<void> {
  const [a, b] = [await createNetns(), await createNetns()];
  const [sdA, sdB] = [mkdtempSync(join(tmpdir(), "sg-fault-ref-")), mkdtempSync(join(tmpdir(), "sg-fault-ref-"))];
  try {
    for (const ns of [a, b]) { await pristine(ns); await loadForeign(ns); }
    const none = await observe(a);
    world.templates.set(templateKey(backend, []), await capture(a, undefined));
    const gateway = await applyClean(a, sdA, backend, "gateway");
    world.templates.set(templateKey(backend, ["gateway"]), await capture(a, sdA));
    const standalone = await applyClean(a, sdA, backend, "standalone");
    world.templates.set(templateKey(backend, ["gateway", "standalone"]), await capture(a, sdA));
    const alone = await applyClean(b, sdB, backend, "standalone");
    world.templates.set(templateKey(backend, ["standalone"]), await capture(b, sdB));
    if (JSON.stringify(alone.units) !== JSON.stringify(standalone.units)) throw new Error(`${backend}: the host policy's objects differ with the history before it:\n${JSON.stringify(alone.units)}\n${JSON.stringify(standalone.units)}`);
    world.refs[backend] = { none: reference(none), gateway: reference(gateway), standalone: reference(standalone) };
  } finally {
    await Promise.all([deleteNetns(a), deleteNetns(b)]);
    rmSync(sdA, { recursive: true, force: true });
    rmSync(sdB, { recursive: true, force: true });
  }
}

export async function buildWorld(): Promise<World> {
  const world = { refs: {}, templates: new Map() } as World;
  await Promise.all((["nft", "iptables"] as const).map((b) => buildBackend(b, world)));
  return world;
}

/** Restores a template into a fresh namespace and a fresh state directory. */
export async function restoreTemplate(world: World, backend: Backend, chain: readonly Label[], ns: Netns, sd: string): Promise<void> {
  const t = world.templates.get(templateKey(backend, chain));
  if (!t) throw new Error(`no template ${templateKey(backend, chain)}`);
  // Four tool runs, not seven: trials are many and the machine has two cores.
  await ns.execChecked("iptables-restore", [], { input: t.v4 });
  await ns.execChecked("ip6tables-restore", [], { input: t.v6 });
  await ns.execChecked("nft", ["-f", "-"], { input: `${FOREIGN_NFT}\n${FIREWALLD_NFT}\n${t.ours}` });
  // The template's settings; forwarding among them, which every template captured as 0 unless a gateway is in force.
  await ns.execChecked("sysctl", ["-q", "-w", ...SETTINGS.map((k) => `${k}=${t.settings[k]}`)]);
  for (const [rel, text] of t.files) {
    mkdirSync(dirname(join(sd, rel)), { recursive: true, mode: 0o700 });
    writeFileSync(join(sd, rel), text, { mode: 0o600 });
  }
}
