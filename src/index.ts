// The library: everything the CLI does, without the CLI.
export { SwarmgateError, formatDiagnostic, formatDiagnosticWithSource, type Diagnostic, type ErrorCode } from "./errors.js";
export { loadPolicy, parsePolicy, MAX_POLICY_BYTES } from "./policy/load.js";
export type * from "./policy/types.js";
export { compile, TABLE_NAME } from "./compile/index.js";
export { emit, backendByName, BACKENDS, BACKEND_NAMES, type BackendName } from "./emit/registry.js";
export type { Artifact, Backend, EmitOptions } from "./emit/types.js";
export { emitNft } from "./emit/nft.js";
export { emitIptables } from "./emit/iptables.js";
export { emitScript } from "./emit/script.js";
export { openings, type Opening } from "./analyze/openings.js";
export type * from "./ir/index.js";
export { ruleFamilies } from "./ir/ruleset.js";
export { parseAddress, formatAddress, type Address, type Family } from "./net/address.js";
export { parsePrefix, formatPrefix, type Prefix } from "./net/prefix.js";
export { parsePortRange, formatPortRange, type PortRange } from "./net/port.js";
