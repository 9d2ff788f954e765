/**
 * helm built from its Go module (test/harness/helm/go.mod pins helm.sh/helm/v4), cached by
 * gobuild.ts like the other harness tools. helm runs with its own temp HOME-style dirs so the
 * tests never read or write the user's helm config, cache or plugins.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { exec, type ExecResult } from '../controlplane.ts';
import { ensureGoTools, repoRoot } from '../gobuild.ts';

/** This folder: the Go module that pins helm (gobuild hashes only go.mod, go.sum and *.go here). */
export const helmModuleDir = dirname(fileURLToPath(import.meta.url));
export const chartDir = resolve(repoRoot, 'charts', 'redis-istio-guard');

export interface Helm {
  bin: string;
  run(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<ExecResult>;
  cleanup(): void;
}

export async function ensureHelm(): Promise<Helm> {
  const { helm: bin } = await ensureGoTools(helmModuleDir, [{ pkg: 'helm.sh/helm/v4/cmd/helm', out: 'helm' }]);
  const home = mkdtempSync(join(tmpdir(), 'rig-helm-'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
    // No cluster: template/lint must not try to reach one.
    KUBECONFIG: join(home, 'no-kubeconfig'),
  };
  return {
    bin: bin!,
    run: (args, opts = {}) => exec(bin!, args, { ...opts, env }),
    cleanup: () => rmSync(home, { recursive: true, force: true }),
  };
}

/** A rendered Kubernetes object (loosely typed: tests assert on fields). */
export type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: any }; [k: string]: any };

export interface Rendered {
  /** The YAML stream `helm template` printed. */
  yaml: string;
  objects: Manifest[];
  /** Finds exactly one object of a kind (throws if there are none or several). */
  one(kind: string): Manifest;
  all(kind: string): Manifest[];
}

export const RELEASE = 'rig';
export const NAMESPACE = 'rig-system';

/** `--set key=value` flags from a flat map. */
export function setFlags(values: Record<string, string | number | boolean>): string[] {
  return Object.entries(values).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
}

export function parseManifests(yaml: string): Manifest[] {
  return parseAllDocuments(yaml)
    .map((d) => d.toJS() as Manifest | null)
    .filter((o): o is Manifest => o !== null && typeof o === 'object' && 'kind' in o);
}

export function rendered(yaml: string): Rendered {
  const objects = parseManifests(yaml);
  const all = (kind: string) => objects.filter((o) => o.kind === kind);
  return {
    yaml,
    objects,
    all,
    one(kind) {
      const found = all(kind);
      if (found.length !== 1) throw new Error(`expected one ${kind}, rendered ${found.length}`);
      return found[0]!;
    },
  };
}

/** `helm template rig <chart> -n rig-system` with the given values; throws with helm's stderr on failure. */
export async function helmTemplate(
  helm: Helm,
  values: Record<string, string | number | boolean> = {},
  extraArgs: string[] = [],
): Promise<Rendered> {
  const res = await helm.run(['template', RELEASE, chartDir, '--namespace', NAMESPACE, ...setFlags(values), ...extraArgs]);
  if (res.code !== 0) throw new Error(`helm template failed (${res.code}): ${res.stderr}`);
  return rendered(res.stdout);
}

/**
 * The chart's webhook configurations, for end-to-end tests that run the webhook on the host:
 * each webhook's Service reference is swapped for `${baseUrl}${path}` (path from the chart), and
 * caBundle set to caPem (base64-encoded here) or removed.
 */
export function webhookConfigurationsForUrl(r: Rendered, baseUrl: string, caPem?: string): Manifest[] {
  return r.objects
    .filter((o) => o.kind === 'ValidatingWebhookConfiguration' || o.kind === 'MutatingWebhookConfiguration')
    .map((o) => {
      const copy = structuredClone(o);
      for (const wh of copy.webhooks as { clientConfig: { service?: { path?: string }; url?: string; caBundle?: string } }[]) {
        const path = wh.clientConfig.service?.path ?? '';
        wh.clientConfig = { url: `${baseUrl}${path}`, ...(caPem ? { caBundle: Buffer.from(caPem).toString('base64') } : {}) };
      }
      if (copy.metadata.annotations) delete copy.metadata.annotations['cert-manager.io/inject-ca-from'];
      return copy;
    });
}
