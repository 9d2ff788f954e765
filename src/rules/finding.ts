/**
 * Builders for findings in the Kubernetes field-error form users already read from kubectl:
 *   spec.x: Invalid value: "bad": why; use "good"
 */
import type { Finding, Severity } from './types.ts';

/** Kubernetes prints string values quoted and other values as JSON. */
export function formatValue(value: unknown): string {
  if (value === undefined) return 'null';
  return JSON.stringify(value) ?? String(value);
}

export function invalid(
  rule: string,
  path: string,
  value: unknown,
  why: string,
  opts: { fix?: string | undefined; severity?: Severity } = {},
): Finding {
  const fix = opts.fix;
  const message = `${path}: Invalid value: ${formatValue(value)}: ${why}${fix !== undefined ? `; use ${formatValue(fix)}` : ''}`;
  return { rule, path, value, severity: opts.severity ?? 'error', message, ...(fix !== undefined ? { fix } : {}) };
}

export function required(rule: string, path: string, why: string, severity: Severity = 'error'): Finding {
  return { rule, path, value: undefined, severity, message: `${path}: Required value: ${why}` };
}

/** A value of the wrong JSON type. The API server's schema usually stops these first. */
export function wrongType(rule: string, path: string, value: unknown, expected: string): Finding {
  return invalid(rule, path, value, `must be ${expected}`);
}

export function forbidden(rule: string, path: string, why: string, severity: Severity = 'error'): Finding {
  return { rule, path, value: undefined, severity, message: `${path}: Forbidden: ${why}` };
}
