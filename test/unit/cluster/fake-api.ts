/**
 * An in-memory stand-in for the API server behind the informers' Transport: objects per kind with
 * resourceVersions, paged lists, watch streams, and knobs for the failures real ones have
 * (absent CRDs, forbidden kinds, failing lists, expired resourceVersions, silent watches).
 */
import type { IndexedKind } from '../../../src/cluster/index.ts';
import type { ListPage, ResourceSpec, Transport } from '../../../src/cluster/informers.ts';

type Obj = { metadata: { name: string; namespace?: string; resourceVersion?: string }; [k: string]: unknown };

interface Watcher {
  kind: IndexedKind;
  namespace: string | undefined;
  event: (type: string, obj: unknown) => void;
  done: (err?: unknown) => void;
}

export const httpError = (code: number, message = `HTTP ${code}`) => Object.assign(new Error(message), { code, body: { message } });

export class FakeApi implements Transport {
  rv = 1;
  readonly objects = new Map<IndexedKind, Map<string, Obj>>();
  /** Kinds whose API is not served at all (404), or only these versions are served. */
  readonly absent = new Set<IndexedKind>();
  readonly servedVersions = new Map<IndexedKind, string[]>();
  readonly forbidden = new Set<IndexedKind>();
  /** The next n list calls fail with this error. */
  failLists = 0;
  listError: unknown = httpError(500, 'etcd is sad');
  /** The next n watch calls fail at connect. */
  failWatches = 0;
  watchError: unknown = httpError(503, 'apiserver is shutting down');
  /** Watches connect but deliver nothing (the silent-watch failure). */
  silent = false;
  /** Lists wait for this before answering, when set. */
  gate: Promise<void> | undefined;
  /** ResourceVersions below this are expired (410). */
  compactedRv = 0;
  readonly watchers = new Set<Watcher>();
  readonly calls: { op: 'list' | 'watch'; kind: IndexedKind; version: string; namespace: string | undefined; rv?: string; continue?: string }[] = [];

  private store(kind: IndexedKind): Map<string, Obj> {
    let m = this.objects.get(kind);
    if (!m) this.objects.set(kind, (m = new Map()));
    return m;
  }

  private served(spec: ResourceSpec, version: string): boolean {
    if (this.absent.has(spec.kind)) return false;
    const versions = this.servedVersions.get(spec.kind);
    return versions ? versions.includes(version) : version === spec.versions[0];
  }

  private emit(kind: IndexedKind, type: string, obj: Obj): void {
    if (this.silent) return;
    for (const w of [...this.watchers])
      if (w.kind === kind && (w.namespace === undefined || w.namespace === obj.metadata.namespace)) w.event(type, structuredClone(obj));
  }

  put(kind: IndexedKind, obj: Obj): void {
    const copy = structuredClone(obj);
    copy.metadata.resourceVersion = String(++this.rv);
    const key = `${copy.metadata.namespace ?? ''}/${copy.metadata.name}`;
    const existed = this.store(kind).has(key);
    this.store(kind).set(key, copy);
    this.emit(kind, existed ? 'MODIFIED' : 'ADDED', copy);
  }

  remove(kind: IndexedKind, namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const obj = this.store(kind).get(key);
    if (!obj) return;
    this.store(kind).delete(key);
    const gone = structuredClone(obj);
    gone.metadata.resourceVersion = String(++this.rv);
    this.emit(kind, 'DELETED', gone);
  }

  bookmark(): void {
    for (const w of this.watchers) w.event('BOOKMARK', { metadata: { resourceVersion: String(this.rv) } });
  }

  /** Ends every watch as the server does at timeoutSeconds. */
  closeWatches(err?: unknown): void {
    for (const w of [...this.watchers]) {
      this.watchers.delete(w);
      w.done(err);
    }
  }

  /** Sends the ERROR event a watch gets when its resourceVersion is too old; only a relist helps. */
  expireWatches(): void {
    this.compactedRv = this.rv;
    for (const w of [...this.watchers]) w.event('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
  }

  async list(spec: ResourceSpec, version: string, namespace: string | undefined, page: { limit: number; continue?: string | undefined }): Promise<ListPage> {
    this.calls.push({ op: 'list', kind: spec.kind, version, namespace, ...(page.continue ? { continue: page.continue } : {}) });
    if (this.gate) await this.gate;
    if (this.failLists > 0) {
      this.failLists--;
      throw this.listError;
    }
    if (!this.served(spec, version)) throw httpError(404, 'the server could not find the requested resource');
    if (this.forbidden.has(spec.kind)) throw httpError(403, `${spec.plural} is forbidden`);
    const all = [...this.store(spec.kind).values()]
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
      .sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
    const start = page.continue ? Number(page.continue) : 0;
    const items = all.slice(start, start + page.limit).map((o) => {
      // Like the API server for built-in kinds: list items carry no apiVersion and kind.
      const { apiVersion: _a, kind: _k, ...rest } = structuredClone(o) as Obj & { apiVersion?: unknown; kind?: unknown };
      return rest;
    });
    const next = start + page.limit < all.length ? String(start + page.limit) : undefined;
    return { items, resourceVersion: String(this.rv), continue: next };
  }

  async watch(
    spec: ResourceSpec,
    version: string,
    namespace: string | undefined,
    resourceVersion: string,
    event: (type: string, obj: unknown) => void,
    done: (err?: unknown) => void,
  ): Promise<() => void> {
    this.calls.push({ op: 'watch', kind: spec.kind, version, namespace, rv: resourceVersion });
    if (this.failWatches > 0) {
      this.failWatches--;
      done(this.watchError);
      return () => {};
    }
    if (!this.served(spec, version)) {
      done(Object.assign(new Error('Not Found'), { statusCode: 404 }));
      return () => {};
    }
    const w: Watcher = { kind: spec.kind, namespace, event, done };
    this.watchers.add(w);
    if (Number(resourceVersion) < this.compactedRv) queueMicrotask(() => event('ERROR', { kind: 'Status', code: 410, reason: 'Expired' }));
    return () => {
      this.watchers.delete(w);
    };
  }

  listCount(kind: IndexedKind): number {
    return this.calls.filter((c) => c.op === 'list' && c.kind === kind && !c.continue).length;
  }
}

export const service = (name: string, ports: number[], namespace = 'redis') => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace },
  spec: { ports: ports.map((port) => ({ port })) },
});

export async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
