/**
 * Where the cluster checks get their credentials, and whether they run at all.
 *
 * `--cluster-checks auto` (the CLI default) turns them on only where credentials are meant for the
 * webhook: inside a pod (KUBERNETES_SERVICE_HOST is set) or with an explicit `--kubeconfig`. On a
 * laptop `npm start` therefore starts without a cluster even when ~/.kube/config points at one;
 * `--cluster-checks on` uses KUBECONFIG or ~/.kube/config there. Order when on: `--kubeconfig`,
 * then in-cluster, then KUBECONFIG, then ~/.kube/config.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

export type ClusterChecksMode = 'auto' | 'on' | 'off';

export const CLUSTER_CHECKS_MODES: readonly ClusterChecksMode[] = ['auto', 'on', 'off'];

export type ClusterAccess =
  | { enabled: false; reason: string }
  | { enabled: true; /** e.g. "in-cluster service account", "--kubeconfig /path" */ source: string; kubeConfig: KubeConfig };

export interface AccessOptions {
  mode: ClusterChecksMode;
  kubeconfig?: string | undefined;
}

function fromFile(file: string, source: string): ClusterAccess {
  if (!existsSync(file)) throw new Error(`kubeconfig ${file} (${source}) does not exist`);
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return checked(kc, `${source} ${file}`);
}

function checked(kc: KubeConfig, source: string): ClusterAccess {
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) throw new Error(`no current cluster in the credentials from ${source}`);
  return { enabled: true, source, kubeConfig: kc };
}

/** Decides whether cluster checks run and loads the credentials. Throws when `on` finds none. */
export function resolveClusterAccess(opts: AccessOptions, env: NodeJS.ProcessEnv = process.env, home: string = homedir()): ClusterAccess {
  if (opts.mode === 'off') return { enabled: false, reason: 'cluster checks are off (--cluster-checks off)' };
  if (opts.kubeconfig) return fromFile(opts.kubeconfig, '--kubeconfig');
  if (env.KUBERNETES_SERVICE_HOST) {
    const kc = new KubeConfig();
    kc.loadFromCluster();
    return checked(kc, 'the in-cluster service account');
  }
  if (opts.mode === 'auto')
    return {
      enabled: false,
      reason:
        'cluster checks are off: not running in a pod and no --kubeconfig given (use --cluster-checks on to read KUBECONFIG or ~/.kube/config)',
    };
  if (env.KUBECONFIG) {
    const files = env.KUBECONFIG.split(process.platform === 'win32' ? ';' : ':').filter(Boolean);
    const missing = files.filter((f) => !existsSync(f));
    if (files.length === 0 || missing.length === files.length) throw new Error(`KUBECONFIG names no existing file: ${env.KUBECONFIG}`);
    const kc = new KubeConfig();
    kc.loadFromDefault();
    return checked(kc, `KUBECONFIG ${env.KUBECONFIG}`);
  }
  const file = join(home, '.kube', 'config');
  if (existsSync(file)) return fromFile(file, 'the default kubeconfig');
  throw new Error(
    '--cluster-checks on, but no credentials: not in a pod, no --kubeconfig, no KUBECONFIG and no ~/.kube/config',
  );
}
