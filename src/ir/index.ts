export * from "./match.js";
export * from "./verdict.js";
export * from "./ruleset.js";
export * from "./icmp.js";
