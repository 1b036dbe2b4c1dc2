// Which program wrote a rule, where its names give it away: explain and
// doctor name it, so that a user knows whose rule decided and where to change
// it. A rule with no such sign is left unattributed (a hand-written script,
// or a tool not listed here).
const BY_CHAIN: [RegExp, string][] = [
  [/^ufw6?-/, "ufw"],
  [/^(DOCKER|DOCKER-USER|DOCKER-ISOLATION-STAGE-\d|DOCKER-INGRESS)$/, "Docker"],
  [/^f2b-/, "fail2ban"],
  [/^(LIBVIRT_|libvirt-)/, "libvirt"],
  [/^SWARMGATE-/, "swarmgate"],
  [/^(IN|FWD|OUT)_[A-Za-z]+(_allow|_deny|_log|_pre|_post)?$/, "firewalld"],
];

export function writerOf(chain: string, comment?: string, table?: string): string | undefined {
  if (table === "swarmgate") return "swarmgate";
  if (table === "firewalld") return "firewalld";
  for (const [re, name] of BY_CHAIN) if (re.test(chain)) return name;
  if (comment && /\[[a-z_]+(\[\d+\])?(\.[a-z_0-9]+)*\]$/.test(comment) && /^(client|admin|forward|outbound|hardening|connection tracking|ICMP|ping|log|LAN|masquerade|loopback)/.test(comment)) return "swarmgate";
  return undefined;
}
