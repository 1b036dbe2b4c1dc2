// One entry point over the five readers: a config's text (and, when the
// client runs, its command line) to settings and problems.
import { readAria2 } from "./aria2.js";
import { readDeluge } from "./deluge.js";
import { readQbittorrent } from "./qbittorrent.js";
import { readRtorrent } from "./rtorrent.js";
import { readTransmission } from "./transmission.js";
import type { ClientKind, PortRange, ReadResult } from "./types.js";

export interface ReadContext {
  args?: readonly string[];
  ephemeral?: PortRange;
  /** Deluge: web.conf next to core.conf. */
  web?: string;
  /** rTorrent: the text of an imported file. */
  include?: (path: string) => string | undefined;
}

export function readClientConfig(kind: ClientKind, text: string, ctx: ReadContext = {}): ReadResult {
  const readers: Record<ClientKind, () => ReadResult> = {
    qbittorrent: () => readQbittorrent(text, { args: ctx.args, ephemeral: ctx.ephemeral }),
    transmission: () => readTransmission(text, ctx.args),
    deluge: () => readDeluge(text, ctx.web, ctx.args),
    rtorrent: () => readRtorrent({ text, include: ctx.include, args: ctx.args }),
    aria2: () => readAria2(text, ctx.args),
  };
  return readers[kind]();
}
