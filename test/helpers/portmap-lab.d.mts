// Types of portmap-lab.mjs (plain JS so that the bench can share it).
import type { ChildProcess } from "node:child_process";

export declare const INSIDE: string;
export declare const CLIENT: string;
export declare const EXTERNAL: string;
export declare const PEER: string;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}
export declare function run(cmd: string, args: string[], input?: string): Promise<RunResult>;

export interface NatpmpcResult {
  code: number;
  stdout: string;
  externalAddress: string | undefined;
  epoch: number;
  mapping: { externalPort: number; protocol: string; internalPort: number; lifetime: number } | null;
}

export interface Dnat {
  protocol: "udp" | "tcp" | undefined;
  port: number | undefined;
  to: string | undefined;
  toPort: number | undefined;
}

export type DriverMessage = { at: number; event?: any; state?: any; started?: boolean; exit?: boolean };

export interface Driver {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly events: DriverMessage[];
  waitFor(pred: (m: DriverMessage) => boolean, ms?: number, from?: number): Promise<DriverMessage>;
  state(): Promise<any>;
  stop(): Promise<void>;
  kill(): void;
}

export interface World {
  readonly ns: { gw: string; cl: string; out: string };
  readonly dir: string;
  log: string;
  startMiniupnpd(extra?: string[]): Promise<number>;
  stopMiniupnpd(): Promise<void>;
  natpmpc(args: string[]): Promise<NatpmpcResult>;
  nftJson(ns?: string): Promise<unknown[]>;
  dnats(): Promise<Dnat[]>;
  setDrop(drop: boolean): Promise<void>;
  dropCounters(): Promise<number[]>;
  startMapper(options: Record<string, unknown>): Driver;
  destroy(): Promise<void>;
}

export declare function createWorld(tag: string): Promise<World>;
