/**
 * `check --cluster`: one read-only list of the live cluster's Namespaces, Services, Gateways,
 * RECs and REDBs (get and list only, paged), fed to the same index the manifests go into.
 * A cluster that cannot be reached or read is an error of the command (exit 2), never a hang:
 * every request has a deadline.
 */
import { ApiException, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { IndexedKind } from '../cluster/index.ts';
import { RESOURCES } from '../cluster/informers.ts';

export interface LiveClusterOptions {
  kubeconfig?: string | undefined;
  context?: string | undefined;
  /** Deadline per request. */
  timeoutMs?: number;
}

export interface LiveSink {
  upsert(obj: unknown, kind: IndexedKind): unknown;
}

export class ClusterUnavailable extends Error {}

const PAGE = 500;

/** The custom kinds, with the versions to try in order: the same table the webhook's cache reads. */
const CUSTOM = [RESOURCES.Gateway, RESOURCES.RedisEnterpriseCluster, RESOURCES.RedisEnterpriseDatabase];

function loadConfig(opts: LiveClusterOptions): { kc: KubeConfig; server: string } {
  const kc = new KubeConfig();
  try {
    if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    throw new ClusterUnavailable(`cannot load the kubeconfig${opts.kubeconfig ? ` ${opts.kubeconfig}` : ''}: ${(err as Error).message}`);
  }
  if (opts.context) {
    if (!kc.getContextObject(opts.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new ClusterUnavailable(`no context ${JSON.stringify(opts.context)} in the kubeconfig; it has: ${known.join(', ') || 'none'}`);
    }
    kc.setCurrentContext(opts.context);
  }
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new ClusterUnavailable('the kubeconfig names no cluster: pass --kubeconfig and --context, or set KUBECONFIG');
  return { kc, server };
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ClusterUnavailable(`${what}: no answer within ${ms / 1000} s`)), ms);
    timer.unref();
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

function describe(err: unknown): string {
  if (err instanceof ApiException) {
    let body = err.body as { message?: string } | string | undefined;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body) as { message?: string };
      } catch {
        // not a Status object
      }
    }
    const message = typeof body === 'object' && body?.message ? body.message : '';
    return `HTTP ${err.code}${message ? `: ${message}` : ''}`;
  }
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return [e.message, e.cause?.code ?? e.cause?.message].filter(Boolean).join(': ') || String(err);
}

/** Lists everything the cross-object rules read into `sink`; returns the API server's URL. */
export async function listLiveCluster(sink: LiveSink, opts: LiveClusterOptions = {}): Promise<{ server: string; counts: Record<string, number> }> {
  const { kc, server } = loadConfig(opts);
  const timeout = opts.timeoutMs ?? 30_000;
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const counts: Record<string, number> = {};

  const pages = async (kind: IndexedKind, list: (cont: string | undefined) => Promise<{ items?: unknown[]; metadata?: { _continue?: string; continue?: string } }>) => {
    let cont: string | undefined;
    counts[kind] = 0;
    do {
      let page;
      try {
        page = await withDeadline(list(cont), timeout, `listing ${kind}s at ${server}`);
      } catch (err) {
        if (err instanceof ClusterUnavailable) throw err;
        throw new ClusterUnavailable(`cannot list ${kind}s at ${server}: ${describe(err)}`);
      }
      for (const item of page.items ?? []) {
        sink.upsert(item, kind);
        counts[kind]++;
      }
      cont = page.metadata?._continue ?? page.metadata?.continue ?? undefined;
    } while (cont);
  };

  await pages('Namespace', (c) => core.listNamespace({ limit: PAGE, ...(c ? { _continue: c } : {}) }));
  await pages('Service', (c) => core.listServiceForAllNamespaces({ limit: PAGE, ...(c ? { _continue: c } : {}) }));
  for (const { kind, group, versions, plural } of CUSTOM) {
    for (const [i, version] of versions.entries()) {
      try {
        await pages(kind, (c) => custom.listClusterCustomObject({ group, version, plural, limit: PAGE, ...(c ? { _continue: c } : {}) }));
        break;
      } catch (err) {
        // 404: this version is not served, or the CRD is not installed (then there are none).
        const notServed = err instanceof ClusterUnavailable && / HTTP 404/.test(err.message);
        if (!notServed) throw err;
        if (i === versions.length - 1) counts[kind] = 0;
      }
    }
  }
  return { server, counts };
}
