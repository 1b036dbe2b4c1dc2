// Where `ports: auto` reads the BitTorrent clients' configs: / unless a
// command was given --clients-root (a container's or an image's root). A
// module of its own so that main.ts sets it without loading client detection.
let root: string | undefined;
export const setClientsRoot = (dir: string | undefined): void => { root = dir; };
export const clientsRoot = (): string | undefined => root;
