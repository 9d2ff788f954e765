/** Settings of `serve`, from flags or REDIS_ISTIO_GUARD_* environment variables. */
import type { ClusterChecksMode } from './cluster/credentials.ts';
import type { CacheMissPolicy, Enforcement } from './rules/context.ts';
import { isDNS1123Label, validateFQDN } from './rules/hostname.ts';

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
  /**
   * Cluster-aware checks from a live cache: `auto` (the CLI default) turns them on in a pod or
   * with an explicit kubeconfig; `on` also reads KUBECONFIG or ~/.kube/config. Absent: off.
   */
  clusterChecks?: ClusterChecksMode;
  /** Kubeconfig file for the cluster checks; wins over in-cluster credentials. */
  kubeconfig?: string;
  /** Namespaces to watch; absent or empty: all. */
  namespaces?: string[];
  /** Cluster domain for `name.ns.svc.<domain>` hosts. Default cluster.local. */
  clusterDomain?: string;
  /** When a cluster check cannot judge (cache not synced, namespace not watched): allow with a warning, or deny. */
  onCacheMiss?: CacheMissPolicy;
  /** selfSigned certificate mode: the Secret the in-process manager keeps (the chart sets these). */
  certificates?: CertificateManagerSettings;
}

export interface CertificateManagerSettings {
  secretName: string;
  namespace: string;
  /** DNS names the serving certificate covers: svc, svc.ns, svc.ns.svc, ... */
  names: string[];
  validatingWebhookConfigurations: string[];
  mutatingWebhookConfigurations: string[];
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

/** Parses a comma-separated namespace list; empty means all namespaces. */
export function parseNamespaces(value: string): string[] {
  const out = [...new Set(value.split(',').map((s) => s.trim()).filter(Boolean))];
  for (const ns of out) if (!isDNS1123Label(ns) || ns !== ns.toLowerCase()) throw new Error(`namespace ${JSON.stringify(ns)} is not a valid namespace name`);
  return out;
}

/** Checks a cluster domain such as cluster.local; returns it without surrounding dots. */
export function parseClusterDomain(value: string): string {
  const domain = value.trim().replace(/^\.+|\.+$/g, '');
  const err = validateFQDN(domain);
  if (err) throw new Error(`cluster domain ${JSON.stringify(value)}: ${err}`);
  return domain;
}
