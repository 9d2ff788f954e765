/**
 * The one rule engine. The webhook, the mutation and the `check` command all call `decide`,
 * so a user sees the same words wherever a rule fires.
 */
import { clusterRules, switchedOff } from './cluster.ts';
import type { Enforcement, RuleContext } from './context.ts';
import { classify, gvkOf, type ObjectKind } from './object.ts';
import { gatewayRules } from './gateway.ts';
import { recRules } from './rec.ts';
import type { Rule } from './rule.ts';
import type { Finding, KubeObject } from './types.ts';
import { virtualServiceRules } from './virtualservice.ts';

export const builtinRules: readonly Rule[] = [...recRules, ...gatewayRules, ...virtualServiceRules, ...clusterRules];

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface EngineOptions {
  rules?: readonly Rule[];
  /** Per rule id: deny turns its warnings into errors, warn its errors into warnings, off drops it. */
  enforcement?: Readonly<Record<string, Enforcement>>;
}

export interface Decision {
  allowed: boolean;
  /** Every finding, errors first, after enforcement and ratcheting. */
  findings: Finding[];
  errors: Finding[];
  warnings: Finding[];
}

function enforce(findings: Finding[], enforcement: Readonly<Record<string, Enforcement>> | undefined): Finding[] {
  if (!enforcement) return findings;
  const out: Finding[] = [];
  for (const f of findings) {
    const mode = enforcement[f.rule];
    if (mode === 'off') continue;
    if (mode === 'warn' && f.severity === 'error') out.push({ ...f, severity: 'warning' });
    else if (mode === 'deny' && f.severity === 'warning' && !f.notice) out.push({ ...f, severity: 'error' });
    else out.push(f);
  }
  return out;
}

/**
 * Runs every rule for the object's kind, except those switched off by the skip-rules annotation
 * on the object or its namespace (each said in a warning). Unknown kinds get no finding.
 */
export function evaluate(kind: ObjectKind, obj: KubeObject, ctx: RuleContext, opts: EngineOptions = {}): Finding[] {
  const rules = opts.rules ?? builtinRules;
  const off = switchedOff(obj, ctx, kind, rules);
  const findings = rules.filter((r) => r.kind === kind && !off.rules.has(r.id)).flatMap((r) => r.check(obj, ctx));
  return enforce([...findings, ...off.notices], opts.enforcement);
}

const ratchetKey = (f: Finding) => `${f.rule}\u0000${JSON.stringify(f.value) ?? ''}`;

export const RATCHET_NOTE = '(allowed: unchanged in this update)';

/**
 * Judges a write. For UPDATE, a bad value that the stored object already had is allowed with a
 * warning, so existing objects can still be relabelled or managed; a changed bad value is denied.
 * DELETE and CONNECT are allowed without looking.
 */
export function decide(
  review: { operation: Operation; kind: ObjectKind; object: KubeObject; oldObject?: KubeObject | undefined },
  ctx: RuleContext,
  opts: EngineOptions = {},
): Decision {
  if (review.operation !== 'CREATE' && review.operation !== 'UPDATE') return { allowed: true, findings: [], errors: [], warnings: [] };
  let findings = evaluate(review.kind, review.object, ctx, opts);
  if (review.operation === 'UPDATE' && review.oldObject && findings.some((f) => f.severity === 'error')) {
    const before = new Set(
      evaluate(review.kind, review.oldObject, ctx, opts)
        .filter((f) => f.severity === 'error')
        .map(ratchetKey),
    );
    findings = findings.map((f) =>
      f.severity === 'error' && before.has(ratchetKey(f)) ? { ...f, severity: 'warning', message: `${f.message} ${RATCHET_NOTE}` } : f,
    );
  }
  const errors = findings.filter((f) => f.severity === 'error');
  const warnings = findings.filter((f) => f.severity === 'warning');
  return { allowed: errors.length === 0, findings: [...errors, ...warnings], errors, warnings };
}

/** Convenience for callers that hold a whole object: classify by its apiVersion and kind. */
export function kindOfObject(obj: unknown): ObjectKind | undefined {
  const gvk = gvkOf(obj);
  return gvk ? classify(gvk) : undefined;
}
