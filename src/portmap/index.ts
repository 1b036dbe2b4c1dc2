// Port mapping through a NAT gateway: NAT-PMP (RFC 6886) and PCP (RFC 6887).
export * from "./natpmp.js";
export * from "./pcp.js";
export * from "./client.js";
export * from "./requests.js";
export * from "./mapper.js";
