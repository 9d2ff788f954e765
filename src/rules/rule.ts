import type { RuleContext } from './context.ts';
import type { ObjectKind } from './object.ts';
import type { Finding, KubeObject } from './types.ts';

/** One concern, one pure function. */
export interface Rule {
  id: string;
  kind: ObjectKind;
  /** One line for the README table and `--help`. */
  summary: string;
  check(obj: KubeObject, ctx: RuleContext): Finding[];
}

/** Defines a rule whose check receives its own id, so findings always carry the right one. */
export function defineRule(
  id: string,
  kind: ObjectKind,
  summary: string,
  check: (id: string, obj: KubeObject, ctx: RuleContext) => Finding[],
): Rule {
  return { id, kind, summary, check: (obj, ctx) => check(id, obj, ctx) };
}
