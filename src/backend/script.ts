// IR → a readable POSIX shell script with start, stop and status. It embeds
// the nft ruleset (and the iptables-restore input for machines without nft)
// and loads it in one transaction, so it never flushes other tools' rules and
// never leaves the host open while it runs.
import type { Ruleset } from "../ir/ruleset.js";
import { builtinOf, emitIptables, iptablesChainName } from "./iptables.js";
import { emitNft } from "./nft.js";
import { identifier } from "./shared.js";
import { header, type Backend, type EmitOptions } from "./types.js";

/**
 * A quoted here-document: nothing inside is expanded; body and tag stay
 * unindented. The body holds text derived from the policy, so the tag is made
 * unique rather than trusted not to occur as a line of it.
 */
function heredoc(command: string, tag: string, body: string): string {
  const lines = new Set(body.split("\n"));
  let unique = tag;
  for (let n = 2; lines.has(unique); n++) unique = `${tag}_${n}`;
  return `  ${command} <<'${unique}'\n${body.trimEnd()}\n${unique}`;
}

export function emitScript(ruleset: Ruleset, options?: EmitOptions): string {
  const tables = ruleset.tables.map((t) => `${identifier(t.family)} ${identifier(t.name)}`);
  const chains = ruleset.tables.flatMap((t) => t.chains);
  const jumps = chains.flatMap((c) => {
    const b = builtinOf(c);
    return b ? [{ table: b.table, builtin: identifier(b.chain), chain: identifier(iptablesChainName(c)) }] : [];
  });
  const v6 = emitIptables(ruleset, 6, { jumps: false });
  const ensure = (tool: string, table: string) => jumps
    .filter((j) => j.table === table && (tool === "iptables" || v6.includes(`:${j.chain} `)))
    .map((j) => `  ensure_jump ${tool} ${j.table} ${j.builtin} ${j.chain}`);
  const forwards = chains.some((c) => c.base?.hook === "forward");
  const nftBody = emitNft(ruleset, options).split("\n").filter((l) => !l.startsWith("#")).join("\n").trim();
  return `#!/bin/sh
${header("#", options, [
  "",
  "Usage: sh THIS-FILE start|stop|status",
  "  start   load the firewall in one transaction (nft -f; iptables-restore where nft is",
  "          missing or SWARMGATE_BACKEND=iptables). Other tools' rules are never flushed,",
  "          and the host is never open while it runs.",
  "  stop    remove swarmgate's rules only, and say what the host falls back to.",
  "  status  show swarmgate's rules with their counters; exit 3 when they are not loaded.",
])}
set -eu

backend() {
  case "\${SWARMGATE_BACKEND:-auto}" in
    nft | iptables) echo "$SWARMGATE_BACKEND" ;;
    auto)
      if command -v nft >/dev/null 2>&1; then echo nft
      elif command -v iptables-restore >/dev/null 2>&1; then echo iptables
      else echo "swarmgate: neither nft nor iptables-restore is installed" >&2; exit 2
      fi ;;
    *) echo "swarmgate: SWARMGATE_BACKEND must be nft or iptables" >&2; exit 2 ;;
  esac
}

start_nft() {
${heredoc("nft -f -", "SWARMGATE_NFT", nftBody)}
}

# Adds the jump from a built-in chain into ours unless it is already there.
ensure_jump() {
  "$1" -w -t "$2" -C "$3" -j "$4" 2>/dev/null || "$1" -w -t "$2" -I "$3" 1 -j "$4"
}

start_iptables() {
${heredoc("iptables-restore -w --noflush", "SWARMGATE_V4", emitIptables(ruleset, 4, { jumps: false }))}
${[...ensure("iptables", "filter"), ...ensure("iptables", "nat")].join("\n")}
${v6 ? heredoc("ip6tables-restore -w --noflush", "SWARMGATE_V6", v6) : "  :"}
${[...ensure("ip6tables", "filter"), ...ensure("ip6tables", "nat")].join("\n")}
}

stop_nft() {
${tables.map((t) => `  if nft list table ${t} >/dev/null 2>&1; then nft delete table ${t}; fi`).join("\n")}
}

# Removes every jump into a SWARMGATE-* chain, then the chains themselves.
stop_iptables() {
  for tool in iptables ip6tables; do
    command -v "$tool" >/dev/null 2>&1 || continue
    for table in filter nat; do
      "$tool" -w -t "$table" -S 2>/dev/null | grep -E '^-A [A-Z]+ -j SWARMGATE-[A-Z0-9-]+$' |
        while read -r _ builtin _ chain; do "$tool" -w -t "$table" -D "$builtin" -j "$chain"; done
      "$tool" -w -t "$table" -S 2>/dev/null | grep -E '^-N SWARMGATE-[A-Z0-9-]+$' |
        while read -r _ chain; do "$tool" -w -t "$table" -F "$chain"; "$tool" -w -t "$table" -X "$chain"; done
    done
  done
}

# Says what filters the host once swarmgate's rules are gone.
report_fallback() {
  if command -v nft >/dev/null 2>&1; then
    listing=$(nft list ruleset 2>/dev/null || true)
  else
    listing=$( (iptables-save; ip6tables-save) 2>/dev/null || true)
  fi
  rules=$(printf '%s\\n' "$listing" | grep -vE '^[[:space:]]*type ' | grep -cE '^[[:space:]]*(-A |[a-z].*(accept|drop|reject|jump|goto))' || true)
  if printf '%s\\n' "$listing" | grep -qE 'policy drop|^:[A-Z]+ DROP'; then
    echo "swarmgate: stopped; other rules ($rules) and a default-drop policy still filter traffic"
  elif [ "$rules" -gt 0 ]; then
    echo "swarmgate: stopped; $rules rules of other tools remain, with no default drop: check them before relying on them" >&2
  else
    echo "swarmgate: stopped. WARNING: no other firewall rules are loaded; this host now accepts every connection." >&2
  fi
}

status() {
  if command -v nft >/dev/null 2>&1 && nft list table ${tables[0] ?? "inet swarmgate"} >/dev/null 2>&1; then
    echo "swarmgate: loaded (nftables)"
    nft list table ${tables[0] ?? "inet swarmgate"}
  elif command -v iptables >/dev/null 2>&1 && iptables -w -S ${jumps[0]?.chain ?? "SWARMGATE-INPUT"} >/dev/null 2>&1; then
    echo "swarmgate: loaded (iptables)"
    for tool in iptables ip6tables; do "$tool" -w -S 2>/dev/null | grep -- 'SWARMGATE-' || true; done
  else
    echo "swarmgate: not loaded"
    exit 3
  fi
}

case "\${1:-}" in
  start)
    case "$(backend)" in
      nft) start_nft ;;
      iptables) start_iptables ;;
    esac
${forwards ? `    if [ "$(cat /proc/sys/net/ipv4/ip_forward 2>/dev/null || echo 0)" != 1 ]; then
      echo "swarmgate: note: IPv4 forwarding is off (net.ipv4.ip_forward=0); LAN hosts are not reachable until it is on" >&2
    fi
` : ""}    echo "swarmgate: started ($(backend))" ;;
  stop)
    if command -v nft >/dev/null 2>&1; then stop_nft; fi
    stop_iptables
    report_fallback ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
`;
}

export const scriptBackend: Backend = {
  name: "script",
  summary: "POSIX shell script with start, stop and status that embeds the nft and iptables rulesets",
  emit: (ruleset, options) => [{ suffix: "", reader: "sh", text: emitScript(ruleset, options), executable: true }],
};
