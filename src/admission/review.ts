/**
 * AdmissionReview (admission.k8s.io/v1) in and out. The route schema has already checked the
 * envelope; this module turns a request into an engine call and a decision into a response.
 */
import type { Decision, Operation } from '../rules/engine.ts';
import type { GroupVersionKind, KubeObject } from '../rules/types.ts';

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  resource?: { group: string; version: string; resource: string };
  operation: Operation;
  name?: string;
  namespace?: string;
  object?: KubeObject | null;
  oldObject?: KubeObject | null;
  dryRun?: boolean;
  userInfo?: { username?: string };
}

export interface AdmissionReview {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  request: AdmissionRequest;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason: string; message: string };
  warnings?: string[];
  patchType?: 'JSONPatch';
  patch?: string;
}

const gvk = {
  type: 'object',
  required: ['group', 'version', 'kind'],
  properties: { group: { type: 'string' }, version: { type: 'string' }, kind: { type: 'string' } },
} as const;

/** The envelope the API server always sends; anything else is answered with 400. */
export const admissionReviewSchema = {
  type: 'object',
  required: ['apiVersion', 'kind', 'request'],
  properties: {
    apiVersion: { type: 'string', const: 'admission.k8s.io/v1' },
    kind: { type: 'string', const: 'AdmissionReview' },
    request: {
      type: 'object',
      required: ['uid', 'kind', 'operation'],
      properties: {
        uid: { type: 'string', minLength: 1 },
        kind: gvk,
        operation: { type: 'string', enum: ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'] },
        name: { type: 'string' },
        namespace: { type: 'string' },
        dryRun: { type: 'boolean' },
        object: { type: ['object', 'null'] },
        oldObject: { type: ['object', 'null'] },
      },
    },
  },
} as const;

export const timeoutQuerySchema = {
  type: 'object',
  properties: {
    // Go's time.Duration text, as the API server writes it: "10s", "1m30s", "500ms".
    timeout: { type: 'string', pattern: '^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$' },
  },
} as const;

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds in a Go duration string; undefined when absent. */
export function parseGoDuration(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  let total = 0;
  for (const m of text.matchAll(/([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * (UNIT_MS[m[2] ?? 's'] ?? 0);
  return total;
}

export function reviewResponse(response: AdmissionResponse) {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response } as const;
}

// The API server drops a warning that has a control character, keeps every warning whole while
// their total stays within 4096 runes, and past that cuts each to 256 runes and drops the rest.
// We do the same before it has to, so what is dropped is said rather than silently lost.
const WARNING_CUT = 256;
const WARNINGS_TOTAL_MAX = 4096;

const runes = (s: string) => [...s].length;

export function formatWarnings(messages: string[]): string[] {
  const clean = [...new Set(messages.map((m) => m.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim()).filter(Boolean))];
  if (clean.reduce((n, m) => n + runes(m), 0) <= WARNINGS_TOTAL_MAX) return clean;
  const out: string[] = [];
  let total = 0;
  for (let i = 0; i < clean.length; i++) {
    const m = clean[i] ?? '';
    const cut = runes(m) > WARNING_CUT ? `${[...m].slice(0, WARNING_CUT - 1).join('')}…` : m;
    if (total + runes(cut) > WARNINGS_TOTAL_MAX - 64) {
      out.push(`${clean.length - i} more warning(s) not shown; see the webhook log`);
      break;
    }
    out.push(cut);
    total += runes(cut);
  }
  return out;
}

/** The admission response for a decision: a denial lists every error, one per line. */
export function decisionResponse(uid: string, decision: Decision, extraWarnings: string[] = []): AdmissionResponse {
  const warnings = formatWarnings([...extraWarnings, ...decision.warnings.map((f) => f.message)]);
  const response: AdmissionResponse = { uid, allowed: decision.allowed };
  if (!decision.allowed) {
    response.status = { code: 403, reason: 'Forbidden', message: decision.errors.map((f) => f.message).join('\n') };
  }
  if (warnings.length > 0) response.warnings = warnings;
  return response;
}
