// `audit` in one call: exposure report, readiness checks and lint for a policy.
import { compile } from "../compile/index.js";
import type { Ruleset } from "../ir/ruleset.js";
import type { Policy } from "../policy/types.js";
import { exposure, type Exposure } from "./exposure.js";
import { lint, type Finding } from "./lint.js";
import { policySpace } from "./policy-space.js";
import { readiness, type Check } from "./readiness.js";

export interface Audit {
  ok: boolean;
  exposure: Exposure[];
  checks: Check[];
  findings: Finding[];
}

export function audit(policy: Policy, ruleset: Ruleset = compile(policy)): Audit {
  const { space, env } = policySpace(policy);
  const exposed = exposure(ruleset, env, space);
  const checks = readiness(policy, ruleset, env, space);
  const findings = lint(ruleset, exposed);
  const ok = checks.every((c) => c.status !== "fail") && !findings.some((f) => f.kind === "stateless-accept");
  return { ok, exposure: exposed, checks, findings };
}
