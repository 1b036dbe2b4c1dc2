// Builds a Topology out of network namespaces and tears it down again.
// Every `ip` command runs inside a sandbox namespace (ip -n), so nothing is
// ever created in, or linked to, the machine's own namespace.
import { runChecked } from "../system/run.js";
import { createNetns, deleteNetns, type Netns } from "../system/netns.js";
import type { LabNode, Topology } from "./topology.js";

export class Sandbox {
  private constructor(readonly nodes: Map<string, Netns>, private readonly all: Netns[]) {}

  ns(node: string): Netns {
    const ns = this.nodes.get(node);
    if (!ns) throw new Error(`no sandbox node ${node}`);
    return ns;
  }

  async destroy(): Promise<void> {
    await Promise.all(this.all.map(deleteNetns));
  }

  /** Creates the namespaces, links, addresses and routes; on failure removes what it made. */
  static async build(topology: Topology): Promise<Sandbox> {
    const nodes = new Map<string, Netns>();
    const all: Netns[] = [];
    try {
      for (const node of topology.nodes) {
        const ns = await createNetns();
        nodes.set(node.id, ns);
        all.push(ns);
      }
      const sandbox = new Sandbox(nodes, all);
      await sandbox.configure(topology, all);
      return sandbox;
    } catch (e) {
      await Promise.all(all.map(deleteNetns));
      throw e;
    }
  }

  private async configure(topology: Topology, all: Netns[]): Promise<void> {
    // Before any link exists, so that new interfaces inherit it: no duplicate
    // address detection (link-local addresses included), since a tentative
    // address delays neighbour discovery by a second or more.
    await Promise.all(topology.nodes.map((node) => {
      const sysctls = ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"];
      if (node.forwarding) sysctls.push("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1");
      return this.ns(node.id).execChecked("sysctl", ["-q", "-w", ...sysctls]);
    }));
    const batches = new Map<Netns, string[]>();
    const batch = (ns: Netns) => batches.get(ns) ?? (batches.set(ns, []), batches.get(ns)!);
    // Links: two members share a veth pair; more hang off a bridge in a switch namespace.
    const segments = new Map<string, { node: LabNode; ifname: string }[]>();
    for (const node of topology.nodes) {
      for (const i of node.interfaces) segments.set(i.segment, [...(segments.get(i.segment) ?? []), { node, ifname: i.name }]);
    }
    for (const members of segments.values()) {
      if (members.length === 2) {
        const [a, b] = members as [{ node: LabNode; ifname: string }, { node: LabNode; ifname: string }];
        batch(this.ns(a.node.id)).push(`link add ${a.ifname} type veth peer name ${b.ifname} netns ${this.ns(b.node.id).name}`);
        continue;
      }
      const sw = await createNetns();
      all.push(sw);
      batch(sw).push("link add br0 type bridge mcast_snooping 0", "link set br0 up");
      members.forEach((m, k) => batch(this.ns(m.node.id)).push(`link add ${m.ifname} type veth peer name p${k} netns ${sw.name}`));
      const ports = members.map((_, k) => [`link set p${k} master br0`, `link set p${k} up`]).flat();
      batches.set(sw, [...batch(sw), ...ports]);
    }
    // Switch ports are created by the members' batches, so those run first.
    const switches = [...batches.keys()].filter((ns) => ![...this.nodes.values()].includes(ns));
    const members = [...batches.keys()].filter((ns) => !switches.includes(ns));
    await Promise.all(members.map((ns) => runBatch(ns, batches.get(ns)!)));
    await Promise.all(switches.map((ns) => runBatch(ns, batches.get(ns)!)));
    await Promise.all(topology.nodes.map((node) => this.configureNode(node)));
  }

  private async configureNode(node: LabNode): Promise<void> {
    const ns = this.ns(node.id);
    const lines: string[] = [];
    for (const i of node.interfaces) {
      for (const addr of i.addresses) lines.push(`addr add ${addr} dev ${i.name}${addr.includes(":") ? " nodad" : ""}`);
      for (const group of i.groups ?? []) lines.push(`addr add ${group}/${group.includes(":") ? 128 : 32} dev ${i.name} autojoin`);
      lines.push(`link set ${i.name} up`);
    }
    for (const r of node.routes) {
      const to = r.to === "default" ? (r.family === 4 ? "0.0.0.0/0" : "::/0") : r.to;
      lines.push(`route add ${to}${r.via ? ` via ${r.via}` : ""} dev ${r.dev}${r.table ? ` table ${r.table}` : ""}`);
    }
    await runBatch(ns, lines);
    // `ip rule` takes its family from the command line, not from the address, so one batch per family.
    for (const family of [4, 6] as const) {
      const rules = (node.rules ?? []).filter((r) => r.family === family).map((r) => `rule add from ${r.from} lookup ${r.table}`);
      await runBatch(ns, rules, [`-${family}`]);
    }
  }
}

async function runBatch(ns: Netns, lines: string[], options: string[] = []): Promise<void> {
  if (lines.length === 0) return;
  await runChecked("ip", ["-n", ns.name, ...options, "-batch", "-"], { input: `${lines.join("\n")}\n` });
}
