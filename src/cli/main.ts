#!/usr/bin/env node
// The swarmgate command. Each command's module is imported only when that
// command runs, so the cold start stays small.
import { readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { guard } from "./report.js";

// A reader that stops early (swarmgate compile | head) is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });
}

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

const program = new Command()
  .name("swarmgate")
  .description("Keep a BitTorrent host or NAT gateway reachable by peers and closed to everyone else.")
  .version(pkg.version, "-V, --version")
  .showHelpAfterError()
  .exitOverride()
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
  .action(async (policy: string | undefined, opts: { json?: boolean }) =>
    guard(opts.json, async () => (await import("./check.js")).runCheck(policy, opts)));

program.command("compile")
  .summary("compile a policy to an nftables, iptables or shell-script ruleset")
  .description("Compile a policy to a ruleset. Nothing is written unless the whole policy is valid.")
  .argument("[policy]", "policy file (YAML or JSON)")
  .addOption(new Option("-b, --backend <name>", "output format").choices(["nft", "iptables", "script"]).default("nft"))
  .option("-o, --output <file>", "write to FILE (iptables writes FILE.v4 and FILE.v6) instead of standard output")
  .option("--json", "print a JSON object instead of text")
  .addHelpText("after", `
Examples:
  swarmgate compile examples/standalone.yaml --backend nft
  swarmgate compile examples/gateway.yaml --backend iptables -o /etc/iptables/rules   # rules.v4, rules.v6
  swarmgate compile examples/standalone.yaml --backend script -o firewall.sh && sh firewall.sh start`)
  .action(async (policy: string | undefined, opts: { backend: string; output?: string; json?: boolean }) =>
    guard(opts.json, async () => (await import("./compile.js")).runCompile(policy, opts)));

program.command("rehearse")
  .summary("prove a policy with real packets in a sandbox of network namespaces")
  .description(`Build a private sandbox of network namespaces that mirrors the policy, load the compiled
ruleset into its host or gateway, try every flow the policy opens and a set that must stay closed
with real sockets, and print what happened. Needs root; never touches this machine's own network
or firewall. Exit status 0 when every flow behaves as expected, 1 otherwise.
Without POLICY and without ./swarmgate.yaml or /etc/swarmgate/policy.yaml it rehearses the bundled standalone example.`)
  .argument("[policy]", "policy file (YAML or JSON)")
  .addOption(new Option("-b, --backend <name>", "how the ruleset is loaded").choices(["nft", "iptables"]).default("nft"))
  .option("--json", "print a JSON object instead of text")
  .addHelpText("after", "\nExamples:\n  sudo swarmgate rehearse\n  sudo swarmgate rehearse examples/gateway.yaml --backend iptables")
  .action(async (policy: string | undefined, opts: { backend: "nft" | "iptables"; json?: boolean }) =>
    guard(opts.json, async () => (await import("./rehearse.js")).runRehearse(policy, opts)));

program.command("explain")
  .summary("say why a packet is accepted or dropped, rule by rule")
  .description(`Run one packet through the policy's compiled ruleset (a simulator, no root needed) and print
the verdict, its path through the chains and the deciding rule with its place in the policy.
PACKET: PROTO SRC[:PORT] -> DST[:PORT] [in IF] [out IF] [STATE] [flags F,F] [uid N]
  "in IF" alone: arriving for this machine (or forwarded after DNAT); "out IF" alone: sent by
  this machine; both: forwarded. IPv6 addresses with a port go in brackets. State defaults to new.`)
  .argument("[policy]", "policy file (YAML or JSON)")
  .argument("<packet>", "the packet, in quotes")
  .option("--state <state>", "connection-tracking state: new, established, related, invalid")
  .option("--flags <flags>", "TCP flags, e.g. syn or syn,ack")
  .option("--uid <uid>", "owner of a packet this machine sends")
  .option("--json", "print a JSON object instead of text")
  .addHelpText("after", `
Examples:
  swarmgate explain examples/standalone.yaml "tcp 203.0.113.5:40000 -> 192.168.153.51:6881 in eth0"
  swarmgate explain examples/standalone.yaml "tcp [2001:db8::5]:40000 -> [2001:db8::51]:22 in eth0"
  swarmgate explain examples/gateway.yaml "udp 198.51.100.7:6881 -> 203.0.113.1:6895 in ppp0" --json`)
  .action(async (a: string, b: string | undefined, opts: { state?: string; flags?: string; uid?: string; json?: boolean }) =>
    // With one argument it is the packet, and the policy is the default one.
    guard(opts.json, async () => (await import("./explain.js")).runExplain(b === undefined ? undefined : a, b ?? a, opts)));

program.command("audit")
  .summary("what exactly is open to whom, BitTorrent readiness checks, and lint")
  .description(`Compute, exactly over the whole packet space, every new connection the policy's ruleset accepts
(inbound, forwarded to each LAN host, outbound); check that peers, trackers (HTTP, HTTPS, UDP), DNS
(UDP and TCP), admin services and forwards work; and lint the ruleset. No root needed.
Exit status 1 when a readiness check fails or a stateless accept is found, so it can gate a deployment.`)
  .argument("[policy]", "policy file (YAML or JSON)")
  .option("--json", "print a JSON object instead of text")
  .addHelpText("after", "\nExamples:\n  swarmgate audit examples/standalone.yaml\n  swarmgate audit --json /etc/swarmgate/policy.yaml && swarmgate compile …")
  .action(async (policy: string | undefined, opts: { json?: boolean }) =>
    guard(opts.json, async () => (await import("./audit.js")).runAudit(policy, opts)));

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (!(e instanceof CommanderError)) throw e;
  // Help and version are successes; anything else commander rejects is a usage error.
  process.exitCode = e.exitCode === 0 ? 0 : 2;
}
