/** Settings of `serve`, from flags or REDIS_ISTIO_GUARD_* environment variables. */
import type { Enforcement } from './rules/context.ts';

export interface ServeSettings {
  port: number;
  host: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  selfSigned: boolean;
  mutate: boolean;
  /** Largest accepted request body in bytes. */
  bodyLimit: number;
  /** Seconds to keep answering after SIGTERM before closing, so endpoints can drop this pod. */
  shutdownDelaySeconds: number;
  logLevel: string;
  enforcement: Record<string, Enforcement>;
}

/**
 * The API server admits objects up to about 3 MiB of JSON, and an UPDATE review carries the
 * object twice: 8 MiB leaves room for both and the envelope.
 */
export const DEFAULT_BODY_LIMIT = 8 * 1024 * 1024;

export const defaultServeSettings: ServeSettings = {
  port: 8443,
  host: '0.0.0.0',
  selfSigned: false,
  mutate: false,
  bodyLimit: DEFAULT_BODY_LIMIT,
  shutdownDelaySeconds: 5,
  logLevel: 'info',
  enforcement: {},
};

const MODES: readonly string[] = ['deny', 'warn', 'off'];

/** Parses "rule=mode" items (from repeated --rule flags or a comma-separated variable). */
export function parseEnforcement(items: string[], knownRules: readonly string[]): Record<string, Enforcement> {
  const out: Record<string, Enforcement> = {};
  for (const raw of items.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean)) {
    const eq = raw.indexOf('=');
    const id = eq < 0 ? raw : raw.slice(0, eq);
    const mode = eq < 0 ? '' : raw.slice(eq + 1);
    if (!knownRules.includes(id)) throw new Error(`unknown rule ${JSON.stringify(id)}; known rules: ${knownRules.join(', ')}`);
    if (!MODES.includes(mode)) throw new Error(`rule ${id}: mode must be deny, warn or off, not ${JSON.stringify(mode)}`);
    out[id] = mode as Enforcement;
  }
  return out;
}
