// swarmgate init: a starter policy from the machine. The writer on made-up
// facts (every kind of client, session and network it meets), then the real
// command in a namespace with its own interface, default route, SSH session
// and client configs: what it writes passes check and rehearse, and it never
// replaces a file.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import type { ClientReport } from "../src/clients/index.js";
import { parseAddress } from "../src/net/address.js";
import { parsePolicy } from "../src/policy/load.js";
import type { Facts } from "../src/init/facts.js";
import { nameservers } from "../src/init/facts.js";
import { starterPolicy } from "../src/init/write.js";
import { withNetns } from "../src/system/netns.js";
import { swarmgate } from "./helpers/cli-in-netns.js";

const a = (s: string) => parseAddress(s)!;
const client = (over: Partial<ClientReport>): ClientReport => ({
  kind: "qbittorrent", config: "/home/alice/.config/qBittorrent/qBittorrent.conf", user: "alice", ports: { from: 6881, to: 6881 }, random: false,
  protocols: ["tcp", "udp"], dht: true, lsd: false, natpmp: false, bind: { interface: null, addresses: [] }, webui: { port: 8080, address: "*" }, listening: [], ...over,
});
const facts = (over: Partial<Facts> = {}): Facts => ({
  uplink: { name: "eth0", addresses: [{ address: a("192.168.1.5"), prefixLength: 24 }, { address: a("2001:db8::5"), prefixLength: 64 }] },
  others: [],
  dns: { servers: [a("192.168.1.1")], source: "/etc/resolv.conf" },
  sessions: [{ client: a("192.168.1.20"), clientPort: 50000, server: a("192.168.1.5"), serverPort: 22, source: "SSH_CONNECTION" }],
  clients: [client({})],
  problems: [],
  ...over,
});

describe("the starter policy", () => {
  test("a host: interface, addresses, the client's port in use, its Web UI to the LAN, the SSH session, DNS — each with where it came from", () => {
    const text = starterPolicy(facts({ clients: [client({ lsd: true, listening: [{ protocol: "tcp", address: "*", port: 6881, pid: 9 }, { protocol: "udp", address: "*", port: 6881, pid: 9 }] })] }));
    const p = parsePolicy(text, "init.yaml");
    expect(p.host).toMatchObject({ interface: "eth0" });
    expect(p.clients).toMatchObject([{ name: "qbittorrent", ports: { first: 6881, last: 6881 }, lsd: true }]);
    expect(p.admin.map((s) => [s.name, s.ports.first])).toEqual([["ssh", 22], ["qbittorrent-webui", 8080]]);
    expect(text).toMatch(/ports: 6881 +# listening now/);
    expect(text).toMatch(/from: \[192\.168\.1\.20\] +# their sources/);
    expect(text).toMatch(/from: \[192\.168\.1\.0\/24, "2001:db8::\/64"\] +# the LAN only/);
    expect(text).toMatch(/dns: \[192\.168\.1\.1\] +# the nameservers of \/etc\/resolv\.conf/);
  });

  test("what cannot be used is said, never dropped silently: a random port not running, a clashing port, a Web UI on localhost, no SSH session", () => {
    const text = starterPolicy(facts({
      sessions: [],
      clients: [
        client({ random: true, ports: { from: 1024, to: 65535 } }),
        client({ kind: "transmission", config: "/etc/transmission-daemon/settings.json", user: "debian-transmission", ports: { from: 51413, to: 51413 }, webui: { port: 9091, address: "127.0.0.1" } }),
        client({ kind: "deluge", config: "/var/lib/deluged/config/core.conf", user: "debian-deluged", ports: { from: 51413, to: 51413 }, webui: null }),
      ],
    }));
    const p = parsePolicy(text, "init.yaml");
    expect(p.clients.map((c) => c.name)).toEqual(["transmission"]);
    expect(text).toMatch(/# qBittorrent.*random port at each start and is not running, so it is left out/);
    expect(text).toMatch(/# Deluge.*port 51413 is already the port of another client above; left out/);
    expect(text).toMatch(/Web UI\/RPC listens on 127\.0\.0\.1 only: nothing to open/);
    expect(text).toMatch(/No SSH session was open/);
  });

  test("a gateway: WAN, LAN and its networks from the interfaces; no default route or LAN is a clear error", () => {
    const gw = facts({ others: [{ name: "lan0", addresses: [{ address: a("10.1.0.1"), prefixLength: 24 }, { address: a("fd00:1::1"), prefixLength: 64 }] }] });
    const p = parsePolicy(starterPolicy(gw, { gateway: true }), "init.yaml");
    expect(p.gateway).toMatchObject({ wan: "eth0", lan: "lan0", masquerade: true });
    expect(() => starterPolicy(facts(), { gateway: true })).toThrowError(/INIT_NO_LAN|no interface other than the uplink/);
    const { uplink: _, ...noRoute } = facts();
    expect(() => starterPolicy(noRoute as Facts)).toThrowError(/no default route.*--interface/);
  });

  test("nameservers: loopback stubs left out, scope suffixes dropped, duplicates once", () => {
    expect(nameservers("# x\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nnameserver fe80::1%eth0\nnameserver 192.0.2.1\n").map((x) => x.value))
      .toEqual([a("192.0.2.1").value, a("fe80::1").value]);
  });
});

describe("swarmgate init on a machine", () => {
  test("writes a policy that passes check and rehearse, keeps the SSH session, and never replaces a file", async () => {
    await withNetns(2, async (host, router) => {
      await host.execChecked("ip", ["link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", router.name]);
      for (const [ns, v4, v6] of [[host, "192.168.7.5/24", "2001:db8:7::5/64"], [router, "192.168.7.1/24", "2001:db8:7::1/64"]] as const) {
        await ns.execChecked("ip", ["addr", "add", v4, "dev", "eth0"]);
        await ns.execChecked("ip", ["-6", "addr", "add", v6, "dev", "eth0", "nodad"]);
        await ns.execChecked("ip", ["link", "set", "eth0", "up"]);
      }
      // The default route points at the other namespace, which has none: nothing leaves the sandbox.
      await host.execChecked("ip", ["route", "add", "default", "via", "192.168.7.1"]);
      const root = mkdtempSync(join(tmpdir(), "sg-init-"));
      mkdirSync(join(root, "etc"));
      writeFileSync(join(root, "etc", "passwd"), "alice:x:1000:1000::/home/alice:/bin/sh\n");
      mkdirSync(join(root, "home", "alice", ".config", "transmission-daemon"), { recursive: true });
      writeFileSync(join(root, "home", "alice", ".config", "transmission-daemon", "settings.json"), JSON.stringify({ "peer-port": 51500, "rpc-port": 9091, "lpd-enabled": true }));
      const out = join(root, "swarmgate.yaml");
      const env = { SSH_CONNECTION: "192.168.7.20 50123 192.168.7.5 22" };
      const init = await swarmgate(host, ["init", "-o", out, "--root", root], env);
      expect(init.code, init.stderr).toBe(0);
      const text = readFileSync(out, "utf8");
      expect(text).toMatch(/interface: eth0/);
      expect(text).toMatch(/ports: 51500/);
      expect(text).toMatch(/lsd: true/);
      expect(text).toMatch(/from: \[192\.168\.7\.20\]/);
      expect(text).toMatch(/port: 9091\n +from: \[192\.168\.7\.0\/24, "2001:db8:7::\/64"\]/);
      expect((await swarmgate(host, ["check", out])).code).toBe(0);
      const rehearse = await swarmgate(host, ["rehearse", out, "--json"]);
      expect(rehearse.code, rehearse.stdout.slice(0, 2000)).toBe(0);
      const again = await swarmgate(host, ["init", "-o", out, "--root", root], env);
      expect(again.code).toBe(2);
      expect(again.stderr).toContain("OUTPUT_EXISTS");
      expect(readFileSync(out, "utf8")).toBe(text);
    });
  });
});
