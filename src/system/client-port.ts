// Telling a BitTorrent client to listen on another port, through its own
// interface: qBittorrent's Web API (app/setPreferences listen_port, after a
// login when credentials are given), Transmission's RPC (session-set
// peer-port, with its X-Transmission-Session-Id handshake), or for any other
// client a command the user names, run with an argument array and the port as
// its last argument (and in $SWARMGATE_PORT) — never through a shell.
import { execFile } from "node:child_process";
import { userError } from "../errors.js";
import type { ClientKind } from "../policy/auto-ports.js";

export interface ClientControl {
  kind: ClientKind;
  /** http://127.0.0.1:8080 — the Web UI or RPC the client serves. */
  url?: string;
  credentials?: { username: string; password: string };
  /** Run instead of an API: [program, ...args]; the port is added last. */
  hook?: string[];
}

const TIMEOUT_MS = 5000;

async function post(url: string, body: string, headers: Record<string, string>): Promise<Response> {
  return fetch(url, { method: "POST", body, headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
}

async function qbittorrent(c: ClientControl, port: number): Promise<void> {
  const base = c.url!.replace(/\/+$/, "");
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded", referer: base };
  if (c.credentials) {
    const login = await post(`${base}/api/v2/auth/login`, new URLSearchParams(c.credentials).toString(), headers);
    const cookie = login.headers.get("set-cookie")?.split(";")[0];
    if (!login.ok || !cookie) throw new Error(`qBittorrent refused the login (HTTP ${login.status})`);
    headers.cookie = cookie;
  }
  const r = await post(`${base}/api/v2/app/setPreferences`, new URLSearchParams({ json: JSON.stringify({ listen_port: port }) }).toString(), headers);
  if (!r.ok) throw new Error(`qBittorrent's Web API answered HTTP ${r.status}${r.status === 403 ? " (log in: give credentials, or set WebUI\\LocalHostAuth=false)" : ""}`);
  // Trackers learn the new port at once, not at the next regular announce (best effort: the port is set either way).
  await post(`${base}/api/v2/torrents/reannounce`, "hashes=all", headers).catch(() => undefined);
}

async function transmission(c: ClientControl, port: number): Promise<void> {
  const url = `${c.url!.replace(/\/+$/, "")}/transmission/rpc`;
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (c.credentials) headers.authorization = `Basic ${Buffer.from(`${c.credentials.username}:${c.credentials.password}`).toString("base64")}`;
  const body = JSON.stringify({ method: "session-set", arguments: { "peer-port": port } });
  let r = await post(url, body, headers);
  if (r.status === 409) {
    // The first answer carries the session id to repeat (Transmission's CSRF protection).
    headers["x-transmission-session-id"] = r.headers.get("x-transmission-session-id") ?? "";
    r = await post(url, body, headers);
  }
  const answer = r.ok ? ((await r.json()) as { result?: string }) : undefined;
  if (answer?.result !== "success") throw new Error(`Transmission's RPC answered ${r.ok ? `"${answer?.result}"` : `HTTP ${r.status}`}`);
  // Trackers learn the new port at once (best effort).
  await post(url, JSON.stringify({ method: "torrent-reannounce", arguments: {} }), headers).catch(() => undefined);
}

function hook(command: string[], port: number): Promise<void> {
  return new Promise((done, fail) => {
    execFile(command[0]!, [...command.slice(1), String(port)], { env: { ...process.env, SWARMGATE_PORT: String(port) }, timeout: 30_000 }, (e, _out, err) => {
      if (e) fail(new Error(`${command[0]} failed: ${err.trim() || e.message}`)); else done();
    });
  });
}

/** Moves the client to `port`; throws a plain Error saying what failed (the caller retries and logs). */
export async function setClientPort(c: ClientControl, port: number): Promise<void> {
  if (c.hook) return hook(c.hook, port);
  if (!c.url) throw userError("CLI_USAGE", `swarmgate cannot tell ${c.kind} a new port by itself: give --hook COMMAND (run with the port as its last argument)`);
  if (c.kind === "qbittorrent") return qbittorrent(c, port);
  if (c.kind === "transmission") return transmission(c, port);
  throw userError("CLI_USAGE", `swarmgate has no API for ${c.kind}: give --hook COMMAND (run with the port as its last argument)`);
}
