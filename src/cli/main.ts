#!/usr/bin/env node
// The swarmgate command. Each command's module is imported only when that
// command runs, so the cold start stays small.
import { BACKEND_NAMES, KERNEL_BACKEND_NAMES } from "../backend/names.js";
import { readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { displayValue, userError } from "../errors.js";
import { setClientsRoot } from "./clients-root.js";
import { guard, reportFailure } from "./report.js";

// A reader that stops early (swarmgate compile | head) is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });
}

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

// --json may stand anywhere (commander parses it per command); a usage error
// happens before commander has parsed anything, so it is read from argv.
const args = process.argv.slice(2);
const jsonRequested = args.slice(0, args.includes("--") ? args.indexOf("--") : undefined).includes("--json");

/** A plain decimal integer from min to max, or a usage error before anything happens. */
function integer(flag: string, min: number, max: number, unit = "") {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d{1,10}$/.test(value) || n < min || n > max) {
      throw userError("CLI_USAGE", `${flag} takes a whole number${unit} from ${min} to ${max}, not "${displayValue(value)}"`);
    }
    return n;
  };
}

/** A repeatable option: every value, in order. */
const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** A backend option: the choices show in --help; a wrong one is BACKEND_UNKNOWN. */
function backendOption(description: string, names: readonly string[]): Option {
  return new Option("-b, --backend <name>", description).choices(names).argParser((value: string) => {
    if (!names.includes(value)) throw userError("BACKEND_UNKNOWN", `unknown backend "${displayValue(value)}" (choose ${names.join(", ")})`);
    return value;
  });
}

/** For commands that load a policy: where `ports: auto` looks for client configs. */
const clientsRootOption = () => new Option("--clients-root <dir>", "with ports: auto, read the BitTorrent clients' configs below DIR instead of / (sockets are this machine's)");

const program = new Command()
  .name("swarmgate")
  // Under --json the failure is reported as JSON on stdout, not as commander's text.
  .configureOutput({ writeErr: (text) => { if (!jsonRequested) process.stderr.write(text); } })
  .description("Keep a BitTorrent host or NAT gateway reachable by peers and closed to everyone else.")
  .version(pkg.version, "-V, --version")
  .showHelpAfterError()
  .exitOverride()
  .hook("preAction", (_program, command) => setClientsRoot(command.opts().clientsRoot as string | undefined))
  .addHelpText("after", `
Examples:
  swarmgate check examples/standalone.yaml
  swarmgate compile examples/gateway.yaml --backend nft -o /etc/swarmgate/ruleset.nft

Without POLICY, swarmgate reads ./swarmgate.yaml, then /etc/swarmgate/policy.yaml.`);

program.command("check")
  .summary("validate a policy and show what it opens to whom")
  .description("Validate a policy (every problem at once, with file:line:column) and print what it opens to whom.")
  .argument("[policy]", "policy file (YAML or JSON)")
  .option("--json", "print a JSON object instead of text")
  .addHelpText("after", "\nExample:\n  swarmgate check examples/standalone.yaml\n  swarmgate check --json /etc/swarmgate/policy.yaml")
  .addOption(clientsRootOption())
  .action(async (policy: string | undefined, opts: { json?: boolean }) =>
    guard(opts.json, async () => (await import("./check.js")).runCheck(policy, opts)));

program.command("compile")
  .summary("compile a policy to an nftables, iptables or shell-script ruleset")
  .description("Compile a policy to a ruleset. Nothing is written unless the whole policy is valid.")
  .argument("[policy]", "policy file (YAML or JSON)")
  .addOption(backendOption("output format", BACKEND_NAMES).default("nft"))
  .option("-o, --output <file>", "write to FILE (iptables writes FILE.v4 and FILE.v6) instead of standard output")
  .option("--json", "print a JSON object instead of text")
  .addHelpText("after", `
Examples:
  swarmgate compile examples/standalone.yaml --backend nft
  swarmgate compile examples/gateway.yaml --backend iptables -o /etc/iptables/rules   # rules.v4, rules.v6
  swarmgate compile examples/standalone.yaml --backend script -o firewall.sh && sh firewall.sh start`)
  .addOption(clientsRootOption())
  .action(async (policy: string | undefined, opts: { backend: string; output?: string; json?: boolean }) =>
    guard(opts.json, async () => (await import("./compile.js")).runCompile(policy, opts)));

program.command("rehearse")
  .summary("prove a policy with real packets in a sandbox of network namespaces")
  .description(`Build a private sandbox of network namespaces that mirrors the policy, load the compiled ruleset into its host or gateway, try every flow the policy opens and a set that must stay closed with real sockets, and print what happened. Needs root; never touches this machine's own network or firewall. Exit status 0 when every flow behaves as expected, 1 otherwise.
Without POLICY and without ./swarmgate.yaml or /etc/swarmgate/policy.yaml it rehearses the bundled standalone example.`)
  .argument("[policy]", "policy file (YAML or JSON)")
  .addOption(backendOption("how the ruleset is loaded", KERNEL_BACKEND_NAMES).default("nft"))
  .option("--json", "print a JSON object instead of text")
  .addHelpText("after", "\nExamples:\n  sudo swarmgate rehearse\n  sudo swarmgate rehearse examples/gateway.yaml --backend iptables")
  .addOption(clientsRootOption())
  .action(async (policy: string | undefined, opts: { backend: "nft" | "iptables"; json?: boolean }) =>
    guard(opts.json, async () => (await import("./rehearse.js")).runRehearse(policy, opts)));

program.command("explain")
  .summary("say why a packet is accepted or dropped, rule by rule")
  .description(`Run one packet through the policy's compiled ruleset (a simulator, no root needed) and print the verdict, its path through the chains and the deciding rule with its place in the policy.
PACKET: PROTO SRC[:PORT] -> DST[:PORT] [in IF] [out IF] [STATE] [flags F,F] [uid N]
  "in IF" alone: arriving for this machine (or forwarded after DNAT); "out IF" alone: sent by this machine; both: forwarded. IPv6 addresses with a port go in brackets. State defaults to new.`)
  .argument("[policy]", "policy file (YAML or JSON); default ./swarmgate.yaml, then /etc/swarmgate/policy.yaml")
  .argument("[packet]", "the packet, in quotes")
  .option("--state <state>", "connection-tracking state: new, established, related, invalid")
  .option("--flags <flags>", "TCP flags, e.g. syn or syn,ack")
  .option("--uid <uid>", "owner of a packet this machine sends", integer("--uid", 0, 4294967295))
  .option("--from <file>", "explain on a ruleset another tool wrote instead of a policy: iptables-save, ip6tables-save or ipset save output (repeat for each file)", collect, [])
  .option("--live", "explain on the machine's own ruleset, every table of nft, iptables-nft and iptables-legacy (read only; root)")
  .option("--route <prefix=iface>", "with --from: where routing sends a destination, e.g. 172.17.0.0/16=docker0 (repeatable)", collect, [])
  .option("--local <iface=address>", "with --from: an address of this machine and its interface (repeatable); the packet's own destination (source) counts when it arrives for (is sent by) this machine", collect, [])
  .option("--json", "print a JSON object instead of text")
  .addHelpText("after", `
Examples:
  swarmgate explain examples/standalone.yaml "tcp 203.0.113.5:40000 -> 192.168.153.51:6881 in eth0"
  swarmgate explain --from iptables-save.txt --from ip6tables-save.txt "udp 203.0.113.5:6881 -> 192.168.0.50:6881 in eth0"
  swarmgate explain examples/standalone.yaml "tcp [2001:db8::5]:40000 -> [2001:db8::51]:22 in eth0"
  swarmgate explain examples/gateway.yaml "udp 198.51.100.7:6881 -> 203.0.113.1:6895 in ppp0" --json`)
  .addOption(clientsRootOption())
  .action(async (a: string | undefined, b: string | undefined, opts: { state?: string; flags?: string; uid?: number; json?: boolean; from: string[]; route: string[]; local: string[]; live?: boolean }) =>
    // With one argument it is the packet, and the policy is the default one.
    guard(opts.json, async () => {
      if (a === undefined) throw userError("CLI_USAGE", 'explain needs a packet, e.g. swarmgate explain "tcp 203.0.113.5:40000 -> 192.168.153.51:6881 in eth0"');
      if (opts.live && opts.from.length > 0) throw userError("CLI_USAGE", "--live and --from both say where the ruleset comes from; give one");
      if (opts.from.length > 0 || opts.live) {
        if (b !== undefined) throw userError("CLI_USAGE", `explain ${opts.live ? "--live" : "--from"} takes the packet alone: the ruleset comes from ${opts.live ? "the kernel" : "the --from files"}, not a policy`);
        return (await import("./explain-from.js")).runExplainFrom(a, opts);
      }
      if (opts.route.length || opts.local.length) throw userError("CLI_USAGE", "--route and --local go with --from or --live");
      return (await import("./explain.js")).runExplain(b === undefined ? undefined : a, b ?? a, opts);
    }));

program.command("audit")
  .summary("what exactly is open to whom, BitTorrent readiness checks, and lint")
  .description(`Compute, exactly over the whole packet space, every new connection the policy's ruleset accepts (inbound, forwarded to each LAN host, outbound); check that peers, trackers (HTTP, HTTPS, UDP), DNS (UDP and TCP), admin services and forwards work; and lint the ruleset. No root needed.
Exit status 1 when a readiness check fails or a stateless accept is found, so it can gate a deployment.`)
  .argument("[policy]", "policy file (YAML or JSON)")
  .option("--json", "print a JSON object instead of text")
  .addHelpText("after", "\nExamples:\n  swarmgate audit examples/standalone.yaml\n  swarmgate audit --json /etc/swarmgate/policy.yaml && swarmgate compile …")
  .addOption(clientsRootOption())
  .action(async (policy: string | undefined, opts: { json?: boolean }) =>
    guard(opts.json, async () => (await import("./audit.js")).runAudit(policy, opts)));

program.command("doctor")
  .summary("diagnose the firewall this machine has (or files hold) for BitTorrent")
  .description(`Read the ruleset the kernel holds (--live, the default; root) or the output of iptables-save, ip6tables-save, ipset save and nft -j list ruleset (--from), whoever wrote it, and check that peers reach the client's ports (TCP and UDP, IPv4 and IPv6), that it reaches peers, trackers (HTTP, HTTPS, UDP) and DNS, and that port forwards work; then list what is wrong (stateless accepts, IPv6 wide open, admin services open to all, wrong-direction forwards, …) with the rules behind it and what to do. Changes nothing.
Ports checked: --port, else the policy's clients, else the BitTorrent clients listening here (--live), else 6881.
Exit status 0 when every check passes and nothing is an error, 1 otherwise, 2 for bad input.`)
  .argument("[policy]", "a swarmgate policy, for the client ports, interface and addresses to check (optional)")
  .option("--live", "read the machine's own ruleset (the default when no --from is given; root)")
  .option("--from <file>", "a ruleset file: iptables-save, ip6tables-save, ipset save or nft -j output (repeatable)", collect, [])
  .option("--port <port>", "a client port to check, TCP and UDP (repeatable)", (v: string, prev: number[]) => [...prev, integer("--port", 1, 65535)(v)], [] as number[])
  .option("--interface <iface>", "the interface peers arrive on (default: the policy's, the default route's with --live, or the one the rules name most)")
  .option("--local <iface=address>", "an address of this machine (repeatable)", collect, [])
  .option("--route <prefix=iface>", "where routing sends a destination, e.g. 192.168.1.0/24=br-lan (repeatable; --live reads the routes)", collect, [])
  .option("--exposure", "add the exact exposure report over every table: what is open to whom (seconds on rulesets of thousands of rules)")
  .option("--json", "print a JSON object instead of text")
  .addHelpText("after", "\nExamples:\n  sudo swarmgate doctor\n  swarmgate doctor --from iptables-save.txt --from ip6tables-save.txt --port 6881 --local eth0=192.168.0.50")
  .addOption(clientsRootOption())
  .action(async (policy: string | undefined, opts: { json?: boolean; live?: boolean; from: string[]; port: number[]; interface?: string; local: string[]; route: string[]; exposure?: boolean }) =>
    guard(opts.json, async () => (await import("./doctor.js")).runDoctor(policy, opts)));

program.command("import")
  .summary("write a policy from the firewall this machine has (or files hold), with the exact difference")
  .description(`Read the ruleset the kernel holds (--live, the default; root) or the output of iptables-save, ip6tables-save, ipset save and nft -j list ruleset (--from), and write a swarmgate host policy of what it lets in and out on the interface peers arrive on: ports open to anyone become clients, ports open to a few sources admin services, what this machine may open the outbound section. A ruleset that forwards (or --gateway) gives a gateway policy: the WAN, the LAN, masquerade, and a forward entry per LAN host that peers reach through DNAT. Then print the exact difference in exposure between the ruleset and the policy (what the policy closes that was open, what it opens that was closed), and what a policy cannot say. Changes nothing in the kernel.`)
  .option("--live", "read the machine's own ruleset (the default when no --from is given; root)")
  .option("--from <file>", "a ruleset file: iptables-save, ip6tables-save, ipset save or nft -j output (repeatable)", collect, [])
  .option("-o, --output <file>", "write the policy there (whole or not at all); without it, print it")
  .option("--interface <iface>", "the interface peers arrive on (default: the default route's with --live, or the one the rules name most)")
  .option("--local <iface=address>", "an address of this machine (repeatable)", collect, [])
  .option("--route <prefix=iface>", "where routing sends a destination (repeatable)", collect, [])
  .option("--gateway", "write a gateway policy (the default when the ruleset forwards: DNAT on an interface, or forward accepts between two)")
  .option("--lan <iface>", "a gateway's LAN interface (default: the route's to the forwarded hosts)")
  .option("--lan-network <prefix>", "a gateway's LAN network, one per family (default: the route's on the LAN interface)", collect, [])
  .option("--json", "print a JSON object instead of text")
  .addHelpText("after", "\nExamples:\n  sudo swarmgate import -o policy.yaml\n  swarmgate import --from iptables-save.txt --from ip6tables-save.txt --local eth0=192.168.0.50\n  swarmgate import --from iptables-save.txt --interface eth1 --lan br-lan --lan-network 192.168.1.0/24")
  .action(async (opts: { json?: boolean; live?: boolean; from: string[]; output?: string; interface?: string; local: string[]; route: string[]; gateway?: boolean; lan?: string; lanNetwork: string[] }) =>
    guard(opts.json, async () => (await import("./import.js")).runImport(opts)));

program.command("clients")
  .summary("find the BitTorrent clients here: their configured ports, settings and what they listen on")
  .description(`Find qBittorrent, Transmission, Deluge, rTorrent and aria2: their configs in every home (/etc/passwd and /home) and Debian's service places, and the clients running in this network namespace with the sockets they listen on. For each: the peer port or range and whether it changes at the next start, the protocols, DHT, LSD, UPnP/NAT-PMP, the bind address and the web UI/RPC port. Changes nothing.
Exit status 0, 1 when a config could not be read (each problem with its file and line), 2 for bad input.`)
  .option("--root <dir>", "read configs and /etc/passwd below DIR instead of / (sockets and processes stay this machine's)")
  .option("--json", "print a JSON object instead of text")
  .addHelpText("after", "\nExamples:\n  sudo swarmgate clients\n  swarmgate clients --root /srv/container-rootfs --json")
  .action(async (opts: { json?: boolean; root?: string }) =>
    guard(opts.json, async () => (await import("./clients.js")).runClients(opts)));

program.command("init")
  .summary("write a starter policy from this machine as it is")
  .description(`Write a starter policy from this machine: the default route's interface and its addresses (both families), the BitTorrent clients found with the ports they use (and LSD when it is on), each client's Web UI/RPC port as an admin service open to the LAN only, the sources of the SSH sessions open now (so applying it keeps them), and the DNS servers from /etc/resolv.conf (or systemd-resolved's). Every value has a comment saying where it came from; what could not be used is said in a comment too. It never replaces a file, and what it writes passes check. Changes nothing else.`)
  .option("-o, --output <file>", "where to write it (default ./swarmgate.yaml; - for standard output)")
  .option("--gateway", "a gateway policy: the default route's interface is the WAN, the other interface with a private IPv4 network the LAN")
  .option("--lan <iface>", "with --gateway: the LAN interface, when several could be")
  .option("--interface <iface>", "the interface peers arrive on, instead of the default route's")
  .option("--root <dir>", "read the BitTorrent clients' configs below DIR (interfaces, routes and sessions are this machine's)")
  .option("--json", "print a JSON object instead of text")
  .addHelpText("after", "\nExamples:\n  swarmgate init && swarmgate check swarmgate.yaml\n  swarmgate init --gateway -o /etc/swarmgate/policy.yaml")
  .action(async (opts) => guard(opts.json, async () => (await import("./init.js")).runInit(opts)));

const STATE = ["--state-dir <dir>", "where backups, the lock and pending confirmations live (default /var/lib/swarmgate, or $SWARMGATE_STATE_DIR)"] as const;
const WAIT = ["--wait <seconds>", "how long to wait for another swarmgate to finish, 0-86400 (default 60)", integer("--wait", 0, 86400, " of seconds")] as const;
const sys = async () => import("./system.js");

program.command("apply")
  .summary("load the policy's ruleset in one transaction, with a backup and rollback")
  .description(`Validate and compile the policy, save the current ruleset as a backup (the newest ten are kept), then load the new one in one transaction (nft -f, or iptables-restore per family) that replaces swarmgate's own table or chains and nothing else; set the kernel settings the policy implies (SYN cookies, ignored broadcast pings, forwarding on a gateway), remembering their old values.
Over SSH it refuses a ruleset that would cut your session, unless --force.
Exit status: 0 applied (and confirmed), 2 refused or failed (the old ruleset stays), 3 rolled back.`)
  .argument("[policy]", "policy file (YAML or JSON)")
  .addOption(backendOption("nft or iptables (default: what this machine uses)", KERNEL_BACKEND_NAMES))
  .option("--dry-run", "show what would change, change nothing")
  .option("--confirm <seconds>", "restore the previous ruleset unless `swarmgate confirm` comes within SECONDS (1-86400)", integer("--confirm", 1, 86400, " of seconds"))
  .option("--force", "apply even if it would cut your SSH session")
  .option(...STATE).option(...WAIT)
  .option("--json", "print a JSON object instead of text")
  .addHelpText("after", "\nExamples:\n  sudo swarmgate apply /etc/swarmgate/policy.yaml --confirm 60   # then, in a new SSH session: sudo swarmgate confirm\n  sudo swarmgate apply --dry-run")
  .addOption(clientsRootOption())
  .action(async (policy: string | undefined, opts) => guard(opts.json, async () => (await sys()).runApply(policy, opts)));

program.command("follow")
  .summary("keep the firewall on the ports the BitTorrent clients use (ports: auto), changing it in place")
  .description(`Watch the configs of the clients whose ports the applied policy reads (ports: auto) and the sockets they listen on; when a client's port moves, move the firewall to it in place — one element swap in nft's port set, or the client's rules replaced where they stand with iptables — so that no other rule is reloaded, no counter reset and no connection dropped. Each change is one line. A config that no longer reads, a port that cannot be told, or a policy edited beyond its ports keeps the ports in force and says why. Runs until SIGTERM; install it as a service with swarmgate install --follow. Needs root.`)
  .argument("[policy]", "the applied policy (default: the one last applied)")
  .option("--interval <seconds>", "how often to look at the listening sockets, 0.1-3600 (default 0.25)", (value: string) => {
    const n = Number(value);
    if (!/^\d{1,4}(\.\d{1,3})?$/.test(value) || n < 0.1 || n > 3600) throw userError("CLI_USAGE", `--interval takes seconds from 0.1 to 3600, not "${displayValue(value)}"`);
    return n;
  })
  .option("--once", "look once, move the firewall if a port moved, and exit")
  .option(...STATE).option(...WAIT)
  .option("--json", "one JSON object per line instead of text")
  .addHelpText("after", "\nExamples:\n  sudo swarmgate follow\n  sudo swarmgate follow /etc/swarmgate/policy.yaml --once")
  .addOption(clientsRootOption())
  .action(async (policy: string | undefined, opts) => guard(opts.json, async () => (await import("./follow.js")).runFollow(policy, opts)));

program.command("portmap")
  .summary("the VPN provider's port forwarding: map the client's port by NAT-PMP/PCP, open it and move the client there")
  .description(`Ask the VPN's gateway (vpn.port_forwarding in the policy) for a UDP and a TCP mapping of the client's port — PCP first, NAT-PMP when the gateway does not speak it — renew it at half its lifetime, retry with back-off when the gateway is silent, and map again when it restarts. Each new external port is put in force in one step: the firewall's client port changed in place (as swarmgate follow does), then the client told to listen there (qBittorrent's Web API, Transmission's RPC, or --hook), then one line. swarmgate status shows the mapping. Runs until SIGTERM, then deletes the mapping. The policy needs a vpn section with port_forwarding and exactly one client with ports: auto. Needs root.`)
  .argument("[policy]", "the applied policy (default: the one last applied)")
  .option("--gateway <address>", "the NAT-PMP/PCP gateway, instead of vpn.port_forwarding.gateway")
  .addOption(new Option("--protocol <protocol>", "natpmp, pcp or auto (default: the policy's)").choices(["auto", "natpmp", "pcp"]))
  .option("--lifetime <seconds>", "the lifetime to ask for, 2-86400 (default 60, as VPN providers grant)", integer("--lifetime", 2, 86400, " of seconds"))
  .option("--url <url>", "the client's Web UI or RPC, instead of the one found in its config (http://127.0.0.1:8080)")
  .option("--credentials <file>", "a file with one line USER:PASSWORD for the client's Web UI or RPC")
  .option("--hook <word>", "instead of the client's API, run this command with the new port as its last argument (repeat for each word)", collect, [])
  .option(...STATE).option(...WAIT)
  .option("--json", "one JSON object per line instead of text")
  .addHelpText("after", "\nExamples:\n  sudo swarmgate portmap\n  sudo swarmgate portmap --hook /usr/local/bin/set-deluge-port")
  .addOption(clientsRootOption())
  .action(async (policy: string | undefined, opts) => guard(opts.json, async () => (await import("./portmap.js")).runPortmap(policy, opts)));

program.command("confirm")
  .summary("keep a ruleset applied with --confirm")
  .option(...STATE).option(...WAIT).option("--json", "print a JSON object instead of text")
  .addHelpText("after", "\nExample:\n  sudo swarmgate confirm")
  .action(async (opts) => guard(opts.json, async () => (await sys()).runConfirm(opts)));

program.command("confirm-timer", { hidden: true })
  .requiredOption("--token <token>").option(...STATE)
  .action(async (opts) => guard(false, async () => (await sys()).runConfirmTimer(opts)));

program.command("stop")
  .summary("remove swarmgate's rules and restore the kernel settings it changed")
  .description("Remove swarmgate's table or chains (every other rule stays), restore the kernel settings it changed, and say what the machine falls back to.")
  .option(...STATE).option(...WAIT).option("--json", "print a JSON object instead of text")
  .addHelpText("after", "\nExample:\n  sudo swarmgate stop")
  .action(async (opts) => guard(opts.json, async () => (await sys()).runStop(opts)));

program.command("status")
  .summary("is swarmgate loaded, does it still match the policy, and what each rule has counted")
  .argument("[policy]", "compare with this policy (default: the one last applied)")
  .option(...STATE).option(...WAIT).option("--json", "print a JSON object instead of text")
  .addHelpText("after", "\nExample:\n  sudo swarmgate status")
  .addOption(clientsRootOption())
  .action(async (policy: string | undefined, opts) => guard(opts.json, async () => (await sys()).runStatus(policy, opts)));

program.command("diff")
  .summary("what apply would change, rule by rule")
  .argument("[policy]", "policy file (YAML or JSON)")
  .addOption(backendOption("nft or iptables", KERNEL_BACKEND_NAMES))
  .option(...STATE)
  .option("--json", "print a JSON object instead of text")
  .addHelpText("after", "\nExample:\n  sudo swarmgate diff /etc/swarmgate/policy.yaml")
  .addOption(clientsRootOption())
  .action(async (policy: string | undefined, opts) => guard(opts.json, async () => (await sys()).runDiff(policy, opts)));

program.command("rollback")
  .summary("restore a backup of the ruleset")
  .option("--to <backup>", "the backup to restore (default: the one the last apply saved)")
  .option("--list", "list the backups")
  .option(...STATE).option(...WAIT).option("--json", "print a JSON object instead of text")
  .addHelpText("after", "\nExamples:\n  sudo swarmgate rollback --list\n  sudo swarmgate rollback --to 2026-11-22T16-17-56-000Z-nft")
  .action(async (opts) => guard(opts.json, async () => (await sys()).runRollback(opts)));

program.command("install")
  .summary("load the policy at boot with a systemd unit")
  .description(`Write ${"/etc/systemd/system/swarmgate.service"}, which applies /etc/swarmgate/policy.yaml before the network comes up, and copy POLICY (or the standalone example) to /etc/swarmgate/policy.yaml when there is none.`)
  .argument("[policy]", "policy to install when /etc/swarmgate/policy.yaml does not exist")
  .addOption(backendOption("nft or iptables", KERNEL_BACKEND_NAMES))
  .option("--root <dir>", "install below DIR instead of / (for images and tests)")
  .option("--follow", "also write swarmgate-follow.service, which runs swarmgate follow (for a policy with ports: auto)")
  .option("--portmap", "also write swarmgate-portmap.service, which runs swarmgate portmap (for a policy with vpn.port_forwarding)")
  .option(...STATE).option("--json", "print a JSON object instead of text")
  .addHelpText("after", "\nExample:\n  sudo swarmgate install my-policy.yaml && sudo systemctl enable --now swarmgate\n  sudo swarmgate install --follow && sudo systemctl enable --now swarmgate swarmgate-follow")
  .action(async (policy: string | undefined, opts) => guard(opts.json, async () => (await sys()).runInstall(policy, opts)));

program.command("uninstall")
  .summary("remove the systemd unit (the policy stays)")
  .option("--root <dir>", "below DIR instead of /").option(...STATE).option("--json", "print a JSON object instead of text")
  .addHelpText("after", "\nExample:\n  sudo systemctl disable --now swarmgate && sudo swarmgate uninstall")
  .action(async (opts) => guard(opts.json, async () => (await sys()).runUninstall(opts)));

/** `swarmgate --json check …`: commander reads options per command, so --json moves after the command name. */
function jsonAfterCommand(argv: string[]): string[] {
  const [node = "", script = "", ...rest] = argv;
  const command = rest.findIndex((a) => !a.startsWith("-"));
  if (command <= 0 || !rest.slice(0, command).includes("--json")) return argv;
  const before = rest.slice(0, command).filter((a) => a !== "--json");
  return [node, script, ...before, rest[command]!, "--json", ...rest.slice(command + 1)];
}

try {
  await program.parseAsync(jsonAfterCommand(process.argv));
} catch (e) {
  if (e instanceof CommanderError) {
    // Help and version are successes; anything else commander rejects is a usage error.
    // Commander has already printed its message in text mode.
    if (e.exitCode === 0) process.exitCode = 0;
    else if (jsonRequested) reportFailure(userError("CLI_USAGE", e.message.replace(/^error: /, "")), true);
    else process.exitCode = 2;
  } else {
    // A value an option parser refused (a SwarmgateError), or a bug.
    reportFailure(e, jsonRequested);
  }
}
