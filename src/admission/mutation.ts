/**
 * The opt-in mutation: a REC with method istio and a hyphen-prefixed database suffix gets the
 * dot form. The patch comes from the same finding and fix the validator reports, so the mutated
 * object is exactly what validation asks for, and a second pass finds nothing to change.
 */
import type { RuleContext } from '../rules/context.ts';
import { evaluate, type EngineOptions } from '../rules/engine.ts';
import { recDbSuffix } from '../rules/rec.ts';
import type { KubeObject } from '../rules/types.ts';

export interface JsonPatchOp {
  op: 'test' | 'replace';
  path: string;
  value: unknown;
}

export interface Mutation {
  patch: JsonPatchOp[];
  warnings: string[];
}

/** "spec.ingressOrRouteSpec.dbFqdnSuffix" → "/spec/ingressOrRouteSpec/dbFqdnSuffix" (no indices here). */
function pointer(path: string): string {
  return `/${path.split('.').map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;
}

export function recSuffixMutation(obj: KubeObject, ctx: RuleContext, opts: EngineOptions = {}): Mutation {
  const patch: JsonPatchOp[] = [];
  const warnings: string[] = [];
  const findings = evaluate('RedisEnterpriseCluster', obj, ctx, { ...opts, rules: [recDbSuffix], enforcement: {} });
  for (const f of findings) {
    if (typeof f.value !== 'string' || !f.value.startsWith('-') || f.fix === undefined) continue;
    // The test op makes the patch fail rather than overwrite a value that changed in between.
    patch.push({ op: 'test', path: pointer(f.path), value: f.value }, { op: 'replace', path: pointer(f.path), value: f.fix });
    warnings.push(
      `${f.path}: changed ${JSON.stringify(f.value)} to ${JSON.stringify(f.fix)}: Istio rejects the partial wildcard ${JSON.stringify(`*${f.value}`)}`,
    );
  }
  return { patch, warnings };
}
