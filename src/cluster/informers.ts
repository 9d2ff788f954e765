/**
 * Informers that keep a ClusterIndex current: for each kind (and each watched namespace), list in
 * pages, then watch from the list's resourceVersion, writing only the slim facts into the index.
 *
 * We drive @kubernetes/client-node's `Watch` ourselves instead of using its ListWatch/makeInformer
 * because those keep every full object in their own cache (tens of MB at 50,000 Services) and stop
 * for good on most errors. Here:
 * - a watch that ends cleanly or times out is resumed from the last resourceVersion;
 * - 410 Gone (expired resourceVersion) relists;
 * - any other error is retried with exponential backoff (1 s doubling to 60 s, with jitter),
 *   resuming the watch when possible and relisting after repeated failures;
 * - everything is relisted on a schedule (10 min by default) to heal missed events;
 * - a watchdog restarts a reflector with no sign of life (event, bookmark, connect) for 5 min;
 * - a kind whose API is absent (404: the CRD is not installed, e.g. no Istio) counts as synced and
 *   empty, and is looked for again every minute, so it never holds readiness back. The same holds
 *   for Namespaces when listing them is forbidden (403): they only feed the off-switch annotation.
 *
 * Lookups never wait on any of this: the rules read the index, and ask `complete()` whether an
 * absence can be trusted right now.
 */
import { CoreV1Api, CustomObjectsApi, Watch, type KubeConfig } from '@kubernetes/client-node';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { CacheMissPolicy } from '../rules/context.ts';
import { ClusterIndex, type IndexedKind } from './index.ts';

export interface ResourceSpec {
  kind: IndexedKind;
  /** '' for the core group. */
  group: string;
  /** Tried in order; the first one served is used. */
  versions: readonly string[];
  plural: string;
  namespaced: boolean;
  /** Not needed for the checks to be right: a 403 counts like an absent API. */
  optional?: boolean;
}

export const RESOURCES: Record<IndexedKind, ResourceSpec> = {
  Service: { kind: 'Service', group: '', versions: ['v1'], plural: 'services', namespaced: true },
  Gateway: { kind: 'Gateway', group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'], plural: 'gateways', namespaced: true },
  RedisEnterpriseCluster: {
    kind: 'RedisEnterpriseCluster',
    group: 'app.redislabs.com',
    versions: ['v1', 'v1alpha1'],
    plural: 'redisenterpriseclusters',
    namespaced: true,
  },
  RedisEnterpriseDatabase: {
    kind: 'RedisEnterpriseDatabase',
    group: 'app.redislabs.com',
    versions: ['v1alpha1'],
    plural: 'redisenterprisedatabases',
    namespaced: true,
  },
  Namespace: { kind: 'Namespace', group: '', versions: ['v1'], plural: 'namespaces', namespaced: false, optional: true },
};

export function resourcePath(spec: ResourceSpec, version: string, namespace?: string): string {
  const base = spec.group === '' ? `/api/${version}` : `/apis/${spec.group}/${version}`;
  return spec.namespaced && namespace ? `${base}/namespaces/${namespace}/${spec.plural}` : `${base}/${spec.plural}`;
}

export interface ListPage {
  items: unknown[];
  resourceVersion: string;
  continue?: string | undefined;
}

/** The API calls the reflectors make. Injected, so unit tests need no API server. */
export interface Transport {
  list(spec: ResourceSpec, version: string, namespace: string | undefined, page: { limit: number; continue?: string | undefined }): Promise<ListPage>;
  /**
   * Starts a watch. Resolves once connected (or failed: then `done` has been or will be called)
   * with a function that aborts it. `done(undefined)` is a clean end; an error with
   * name "TimeoutError" is the client's inactivity timeout.
   */
  watch(
    spec: ResourceSpec,
    version: string,
    namespace: string | undefined,
    resourceVersion: string,
    event: (type: string, obj: unknown) => void,
    done: (err?: unknown) => void,
  ): Promise<() => void>;
}

/** The HTTP status of an error from client-node (ApiException.code, Watch's statusCode). */
export function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

/** One line for logs, metrics and readiness reasons: no headers, no bodies. */
export function describeError(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const e = err as { code?: unknown; body?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };
  const status = statusOf(err);
  let detail: string | undefined;
  let body = e.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      /* not JSON */
    }
  }
  if (typeof body === 'object' && body !== null && typeof (body as { message?: unknown }).message === 'string') detail = (body as { message: string }).message;
  const message = detail ?? (typeof e.message === 'string' ? e.message.split('\n')[0] : String(err));
  const cause = e.cause && typeof e.cause.code === 'string' ? ` (${e.cause.code})` : '';
  return `${status !== undefined ? `HTTP ${status}: ` : ''}${message}${cause}`.slice(0, 300);
}

/** Lists and watches through client-node: typed clients for lists, `Watch` for streams. */
export function kubeTransport(kc: KubeConfig): Transport {
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const watcher = new Watch(kc);
  return {
    async list(spec, version, namespace, page) {
      const params = { limit: page.limit, ...(page.continue ? { _continue: page.continue } : {}) };
      let list: { items?: unknown[]; metadata?: { resourceVersion?: string; _continue?: string; continue?: string } };
      if (spec.group === '' && spec.kind === 'Service')
        list = namespace ? await core.listNamespacedService({ namespace, ...params }) : await core.listServiceForAllNamespaces(params);
      else if (spec.group === '' && spec.kind === 'Namespace') list = await core.listNamespace(params);
      else {
        const base = { group: spec.group, version, plural: spec.plural, ...params };
        list = namespace ? await custom.listNamespacedCustomObject({ ...base, namespace }) : await custom.listClusterCustomObject(base);
      }
      return {
        items: Array.isArray(list.items) ? list.items : [],
        resourceVersion: list.metadata?.resourceVersion ?? '',
        continue: list.metadata?._continue ?? list.metadata?.continue,
      };
    },
    async watch(spec, version, namespace, resourceVersion, event, done) {
      const query = {
        resourceVersion,
        allowWatchBookmarks: true,
        // The server ends each watch after 5 to 10 min; we resume from the last resourceVersion.
        timeoutSeconds: 300 + Math.floor(Math.random() * 300),
      };
      const controller = await watcher.watch(resourcePath(spec, version, namespace), query, (type, obj) => event(type, obj), done);
      return () => controller.abort();
    },
  };
}

export interface Timings {
  /** First retry delay after an error; doubles up to backoffMaxMs. */
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** Full relist period (jittered ±10 %). */
  relistMs: number;
  /** Restart a reflector with no event, bookmark or connect for this long. */
  watchdogMs: number;
  /** Look again for an absent API (CRD not installed) this often. */
  absentRecheckMs: number;
  /** After a sync, an absence is no longer trusted once the watch has failed for this long. */
  staleAfterMs: number;
  /** Give up on a list call after this long and retry. */
  listTimeoutMs: number;
  /** Items per list page. */
  pageSize: number;
  /** Watch failures in a row after which we relist instead of resuming. */
  relistAfterFailures: number;
}

export const DEFAULT_TIMINGS: Timings = {
  backoffInitialMs: 1000,
  backoffMaxMs: 60_000,
  relistMs: 10 * 60_000,
  watchdogMs: 5 * 60_000,
  absentRecheckMs: 60_000,
  staleAfterMs: 60_000,
  listTimeoutMs: 60_000,
  pageSize: 500,
  relistAfterFailures: 3,
};

export interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

const silent: Log = { info() {}, warn() {}, error() {}, debug() {} };

/** What readiness needs from the server: the webhook's Readiness fits. */
export interface ReadinessGate {
  block(name: string, why: string): void;
  clear(name: string): void;
}

export interface ReflectorStatus {
  kind: IndexedKind;
  /** undefined: all namespaces. */
  namespace: string | undefined;
  synced: boolean;
  /** The API is not served (CRD not installed) or, for an optional kind, forbidden. */
  absent: boolean;
  version: string | undefined;
  lastError: string | undefined;
  failingSinceMs: number | undefined;
  lastProgressMs: number;
  lastEventMs: number | undefined;
  lastListMs: number | undefined;
  restarts: number;
  relists: number;
  /** Time from start to the end of the first list, ms. */
  firstSyncMs: number | undefined;
}

type Outcome = { kind: 'closed' | 'timeout' | 'expired' | 'relist' | 'watchdog' | 'stopped'; resourceVersion: string };

class Stopped extends Error {}

const MIN_RELIST_INTERVAL_MS = 1000;

function jitter(ms: number, spread = 0.2): number {
  return Math.round(ms * (1 - spread + Math.random() * 2 * spread));
}

function rvOf(obj: unknown): string | undefined {
  const meta = typeof obj === 'object' && obj !== null ? (obj as { metadata?: { resourceVersion?: unknown } }).metadata : undefined;
  return typeof meta?.resourceVersion === 'string' ? meta.resourceVersion : undefined;
}

interface ReflectorHooks {
  changed(r: Reflector): void;
  restarted(r: Reflector, reason: 'error' | 'expired' | 'watchdog'): void;
  relisted(r: Reflector): void;
}

/** One kind in one namespace (or all): list, then watch, forever. */
export class Reflector {
  readonly spec: ResourceSpec;
  readonly namespace: string | undefined;
  private readonly transport: Transport;
  private readonly index: ClusterIndex;
  private readonly t: Timings;
  private readonly log: Log;
  private readonly hooks: ReflectorHooks;
  private stopped = false;
  private readonly stopController = new AbortController();
  private abortWatch: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private readonly startedAt = Date.now();

  synced = false;
  absent = false;
  version: string | undefined;
  lastError: string | undefined;
  failingSince: number | undefined;
  lastProgress = Date.now();
  lastEvent: number | undefined;
  lastList: number | undefined;
  restarts = 0;
  relists = 0;
  firstSyncMs: number | undefined;
  private firstSync!: () => void;
  readonly whenSynced: Promise<void> = new Promise((r) => (this.firstSync = r));

  constructor(spec: ResourceSpec, namespace: string | undefined, deps: { transport: Transport; index: ClusterIndex; timings: Timings; log: Log; hooks: ReflectorHooks }) {
    this.spec = spec;
    this.namespace = namespace;
    this.transport = deps.transport;
    this.index = deps.index;
    this.t = deps.timings;
    this.log = deps.log;
    this.hooks = deps.hooks;
  }

  get name(): string {
    return this.namespace === undefined ? this.spec.kind : `${this.spec.kind}/${this.namespace}`;
  }

  start(): void {
    this.running ??= this.run().catch((err: unknown) => {
      if (!(err instanceof Stopped)) this.log.error({ informer: this.name, err: describeError(err) }, 'informer loop failed');
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopController.abort();
    this.abortWatch?.();
    await this.running;
  }

  private get stopSignal(): AbortSignal {
    return this.stopController.signal;
  }

  status(): ReflectorStatus {
    return {
      kind: this.spec.kind,
      namespace: this.namespace,
      synced: this.synced,
      absent: this.absent,
      version: this.version,
      lastError: this.lastError,
      failingSinceMs: this.failingSince,
      lastProgressMs: this.lastProgress,
      lastEventMs: this.lastEvent,
      lastListMs: this.lastList,
      restarts: this.restarts,
      relists: this.relists,
      firstSyncMs: this.firstSyncMs,
    };
  }

  /** true when an absence in this reflector's data can be trusted now, else why not. */
  health(now = Date.now()): true | string {
    const what = `the ${this.spec.kind} cache${this.namespace !== undefined ? ` for namespace ${JSON.stringify(this.namespace)}` : ''}`;
    if (!this.synced) return `${what} has not finished its first list${this.lastError ? ` (last error: ${this.lastError})` : ''}`;
    if (this.failingSince !== undefined && now - this.failingSince > this.t.staleAfterMs)
      return `${what} is stale: the API server has not answered its watch for ${Math.round((now - this.failingSince) / 1000)} s (last error: ${this.lastError ?? 'unknown'})`;
    return true;
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.reject(new Stopped());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.stopController.signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        reject(new Stopped());
      };
      this.stopController.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private fail(err: unknown): void {
    this.lastError = describeError(err);
    this.failingSince ??= Date.now();
    this.hooks.changed(this);
  }

  private ok(): void {
    this.failingSince = undefined;
    this.lastError = undefined;
    this.lastProgress = Date.now();
  }

  private markSynced(): void {
    if (!this.synced) {
      this.synced = true;
      this.firstSyncMs = Date.now() - this.startedAt;
      this.firstSync();
    }
    this.hooks.changed(this);
  }

  private async run(): Promise<void> {
    let delay = 0;
    let lastRelist = 0;
    while (!this.stopped) {
      try {
        // At most one relist a second, whatever the server answers (e.g. 410 right after a list).
        const wait = lastRelist + MIN_RELIST_INTERVAL_MS - Date.now();
        if (wait > 0) await this.sleep(wait);
        lastRelist = Date.now();
        const rv = await this.relist();
        if (rv === undefined) {
          // Absent API: synced and empty; look again later.
          delay = 0;
          await this.sleep(jitter(this.t.absentRecheckMs, 0.1));
          continue;
        }
        delay = 0;
        const reason = await this.watchLoop(rv);
        if (reason === 'expired' || reason === 'watchdog' || reason === 'error') {
          this.restarts++;
          this.hooks.restarted(this, reason);
        }
      } catch (err) {
        if (err instanceof Stopped || this.stopped) return;
        this.fail(err);
        this.restarts++;
        this.hooks.restarted(this, 'error');
        delay = delay ? Math.min(delay * 2, this.t.backoffMaxMs) : this.t.backoffInitialMs;
        this.log.warn({ informer: this.name, err: this.lastError, retryInMs: delay }, 'informer list failed; retrying');
        await this.sleep(jitter(delay));
      }
    }
  }

  /** A list call bounded in time and abandoned on stop (its late answer is dropped). */
  private withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took longer than ${this.t.listTimeoutMs} ms`)), this.t.listTimeoutMs);
      onAbort = () => reject(new Stopped());
      this.stopSignal.addEventListener('abort', onAbort, { once: true });
    });
    return Promise.race([p, timeout]).finally(() => {
      clearTimeout(timer);
      if (onAbort) this.stopSignal.removeEventListener('abort', onAbort);
    });
  }

  /**
   * Lists every page and makes the index match. Returns the list's resourceVersion, or undefined
   * when the API is absent (then the index holds none of this kind in scope).
   */
  private async relist(): Promise<string | undefined> {
    const versions = this.version ? [this.version, ...this.spec.versions.filter((v) => v !== this.version)] : [...this.spec.versions];
    let lastStatus: number | undefined;
    for (const version of versions) {
      try {
        const rv = await this.listAll(version);
        if (this.version !== version) this.log.info({ informer: this.name, version }, 'informer uses this API version');
        this.version = version;
        this.absent = false;
        this.relists++;
        this.hooks.relisted(this);
        this.lastList = Date.now();
        this.ok();
        this.markSynced();
        return rv;
      } catch (err) {
        lastStatus = statusOf(err);
        if (lastStatus === 404) continue;
        if (lastStatus === 403 && this.spec.optional) break;
        throw err;
      }
    }
    // 404 on every version (the CRD is not installed), or 403 on an optional kind.
    for (const [ns, name] of this.index.keys(this.spec.kind, this.namespace)) this.index.remove(this.spec.kind, ns, name);
    if (!this.absent)
      this.log.info(
        { informer: this.name, status: lastStatus },
        lastStatus === 403 ? 'informer not permitted; treating the kind as empty' : 'API not served (CRD not installed); treating the kind as empty',
      );
    this.absent = true;
    this.version = undefined;
    this.lastList = Date.now();
    this.ok();
    this.markSynced();
    return undefined;
  }

  private async listAll(version: string): Promise<string> {
    const stale = new Set(this.index.keys(this.spec.kind, this.namespace).map(([ns, name]) => `${ns}/${name}`));
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await this.withTimeout(
        this.transport.list(this.spec, version, this.namespace, { limit: this.t.pageSize, continue: cont }),
        `listing ${this.spec.plural}`,
      );
      if (this.stopped) throw new Stopped();
      if (!cont) rv = page.resourceVersion;
      for (const item of page.items) {
        if (!this.index.upsert(item, this.spec.kind, this.namespace ?? '')) continue;
        const meta = (item as { metadata?: { name?: string; namespace?: string } }).metadata;
        stale.delete(`${this.spec.kind === 'Namespace' ? '' : (meta?.namespace ?? this.namespace ?? '')}/${meta?.name ?? ''}`);
      }
      cont = page.continue || undefined;
      this.lastProgress = Date.now();
    } while (cont);
    for (const key of stale) {
      const slash = key.indexOf('/');
      this.index.remove(this.spec.kind, key.slice(0, slash), key.slice(slash + 1));
    }
    return rv;
  }

  /** Watches from `rv`, resuming after clean ends and transient errors; returns why a relist is due. */
  private async watchLoop(rv: string): Promise<'expired' | 'watchdog' | 'scheduled' | 'error'> {
    const relistAt = Date.now() + jitter(this.t.relistMs, 0.1);
    let resourceVersion = rv;
    let failures = 0;
    let delay = 0;
    for (;;) {
      if (this.stopped) throw new Stopped();
      if (Date.now() >= relistAt) return 'scheduled';
      const started = Date.now();
      let outcome: Outcome;
      try {
        outcome = await this.watchOnce(resourceVersion, relistAt);
      } catch (err) {
        if (err instanceof Stopped || this.stopped) throw new Stopped();
        this.fail(err);
        failures++;
        // Gone for good (the CRD was deleted) or no longer permitted: the relist tells which.
        if (statusOf(err) === 404 || statusOf(err) === 403) return 'error';
        if (failures >= this.t.relistAfterFailures) return 'error';
        delay = delay ? Math.min(delay * 2, this.t.backoffMaxMs) : this.t.backoffInitialMs;
        this.log.warn({ informer: this.name, err: this.lastError, retryInMs: delay }, 'informer watch failed; resuming');
        this.restarts++;
        this.hooks.restarted(this, 'error');
        await this.sleep(jitter(delay));
        continue;
      }
      resourceVersion = outcome.resourceVersion;
      switch (outcome.kind) {
        case 'stopped':
          throw new Stopped();
        case 'expired':
        case 'watchdog':
          this.log.info({ informer: this.name, reason: outcome.kind }, 'informer relisting');
          return outcome.kind;
        case 'relist':
          return 'scheduled';
        case 'closed':
        case 'timeout':
          failures = 0;
          delay = 0;
          // A server that ends watches at once must not make us spin.
          if (Date.now() - started < 1000) await this.sleep(1000);
      }
    }
  }

  private watchOnce(rv: string, relistAt: number): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      let current = rv;
      let settled = false;
      let abort: (() => void) | undefined;
      const timers: NodeJS.Timeout[] = [];
      const finish = (kind: Outcome['kind'] | undefined, err?: unknown) => {
        if (settled) return;
        settled = true;
        for (const t of timers) clearTimeout(t);
        this.abortWatch = undefined;
        abort?.();
        if (kind === undefined) reject(err);
        else resolve({ kind, resourceVersion: current });
      };
      this.abortWatch = () => finish('stopped');
      timers.push(setTimeout(() => finish('relist'), Math.max(0, relistAt - Date.now())));
      timers.push(
        setInterval(() => {
          if (Date.now() - this.lastProgress > this.t.watchdogMs) finish('watchdog');
        }, Math.max(10, Math.min(15_000, Math.floor(this.t.watchdogMs / 4)))),
      );
      const onEvent = (type: string, obj: unknown) => {
        if (settled) return;
        this.lastProgress = Date.now();
        const next = rvOf(obj);
        switch (type) {
          case 'ADDED':
          case 'MODIFIED':
            this.index.upsert(obj, this.spec.kind, this.namespace ?? '');
            this.lastEvent = Date.now();
            break;
          case 'DELETED':
            this.index.delete(obj, this.spec.kind, this.namespace ?? '');
            this.lastEvent = Date.now();
            break;
          case 'BOOKMARK':
            break;
          case 'ERROR': {
            const code = (obj as { code?: unknown } | null)?.code;
            if (code === 410) return finish('expired');
            return finish(undefined, Object.assign(new Error(`watch error event: ${(obj as { message?: string } | null)?.message ?? JSON.stringify(obj)}`), { statusCode: code }));
          }
          default:
            return;
        }
        if (next) current = next;
      };
      const onDone = (err?: unknown) => {
        if (!err) return finish('closed');
        if ((err as { name?: unknown }).name === 'TimeoutError') return finish('timeout');
        if (statusOf(err) === 410) return finish('expired');
        if (this.stopped) return finish('stopped');
        return finish(undefined, err);
      };
      this.transport.watch(this.spec, this.version ?? this.spec.versions[0] ?? 'v1', this.namespace, rv, onEvent, onDone).then(
        (a) => {
          abort = a;
          if (settled) return a();
          // Connected: the API server answers, so the cache is current again.
          this.ok();
          this.hooks.changed(this);
        },
        (err: unknown) => finish(undefined, err),
      );
    });
  }
}

export interface ClusterCacheOptions {
  transport: Transport;
  /** Namespaces to watch; undefined or empty: all. */
  namespaces?: readonly string[] | undefined;
  onCacheMiss?: CacheMissPolicy;
  /** Watch Namespaces for the skip-rules annotation (best effort). Default true. */
  namespaceAnnotations?: boolean;
  timings?: Partial<Timings>;
  registry?: Registry;
  readiness?: ReadinessGate;
  log?: Log;
}

/** Which reflectors answer for a kind of the ClusterView. */
const FEEDS: Record<'Service' | 'Gateway', IndexedKind[]> = {
  Service: ['Service', 'RedisEnterpriseCluster', 'RedisEnterpriseDatabase'],
  Gateway: ['Gateway'],
};

const READINESS_PREFIX = 'cache/';

/** The live cluster view: a ClusterIndex fed by one reflector per kind and watched namespace. */
export class ClusterCache {
  readonly index: ClusterIndex;
  readonly reflectors: Reflector[] = [];
  private readonly namespaces: readonly string[] | undefined;
  private readonly readiness: ReadinessGate | undefined;
  private readonly log: Log;
  private started = false;

  constructor(opts: ClusterCacheOptions) {
    const timings = { ...DEFAULT_TIMINGS, ...opts.timings };
    this.namespaces = opts.namespaces && opts.namespaces.length > 0 ? [...new Set(opts.namespaces)] : undefined;
    this.readiness = opts.readiness;
    this.log = opts.log ?? silent;
    this.index = new ClusterIndex({
      completeness: (kind, namespace) => this.completeness(kind, namespace),
      onCacheMiss: opts.onCacheMiss ?? 'allow',
    });
    const metrics = opts.registry ? cacheMetrics(opts.registry, this) : undefined;
    const hooks: ReflectorHooks = {
      changed: (r) => {
        metrics?.synced.set(labels(r), r.synced ? 1 : 0);
        metrics?.available.set(labels(r), r.absent ? 0 : 1);
        if (r.synced) this.readiness?.clear(READINESS_PREFIX + r.name);
        else this.readiness?.block(READINESS_PREFIX + r.name, this.blockReason(r));
      },
      restarted: (r, reason) => metrics?.restarts.inc({ ...labels(r), reason }),
      relisted: (r) => metrics?.relists.inc(labels(r)),
    };
    const deps = { transport: opts.transport, index: this.index, timings, log: this.log, hooks };
    for (const kind of ['Service', 'Gateway', 'RedisEnterpriseCluster', 'RedisEnterpriseDatabase'] as const) {
      if (this.namespaces) for (const ns of this.namespaces) this.reflectors.push(new Reflector(RESOURCES[kind], ns, deps));
      else this.reflectors.push(new Reflector(RESOURCES[kind], undefined, deps));
    }
    if (opts.namespaceAnnotations !== false) this.reflectors.push(new Reflector(RESOURCES.Namespace, undefined, deps));
  }

  private blockReason(r: Reflector): string {
    return `${r.name} cache: first list not finished${r.lastError ? ` (last error: ${r.lastError})` : ''}`;
  }

  /** Starts every reflector; readiness stays blocked until each has finished its first list. */
  start(): void {
    if (this.started) return;
    this.started = true;
    for (const r of this.reflectors) {
      this.readiness?.block(READINESS_PREFIX + r.name, this.blockReason(r));
      r.start();
    }
  }

  /** Resolves when every reflector has finished its first list (for tests and logs). */
  async synced(): Promise<void> {
    await Promise.all(this.reflectors.map((r) => r.whenSynced));
  }

  async stop(): Promise<void> {
    await Promise.all(this.reflectors.map((r) => r.stop()));
  }

  status(): ReflectorStatus[] {
    return this.reflectors.map((r) => r.status());
  }

  private reflectorFor(kind: IndexedKind, namespace: string): Reflector | undefined {
    return this.reflectors.find((r) => r.spec.kind === kind && (r.namespace === undefined || r.namespace === namespace));
  }

  private completeness(kind: 'Service' | 'Gateway', namespace: string): true | string {
    const now = Date.now();
    for (const k of FEEDS[kind]) {
      const r = this.reflectorFor(k, namespace);
      if (!r) return `namespace ${JSON.stringify(namespace)} is not watched (watched: ${this.namespaces?.join(', ') ?? 'all'})`;
      const h = r.health(now);
      if (h !== true) return h;
    }
    return true;
  }
}

const labels = (r: Reflector) => ({ kind: r.spec.kind, namespace: r.namespace ?? '*' });

function cacheMetrics(registry: Registry, cache: ClusterCache) {
  const names = ['kind', 'namespace'] as const;
  const synced = new Gauge({
    name: 'redis_istio_guard_cache_synced',
    help: 'Whether the cache of a kind (per watched namespace, * for all) has finished its first list.',
    labelNames: names,
    registers: [registry],
  });
  const available = new Gauge({
    name: 'redis_istio_guard_cache_api_available',
    help: 'Whether the API of a kind is served (0: CRD not installed, or Namespaces not permitted).',
    labelNames: names,
    registers: [registry],
  });
  new Gauge({
    name: 'redis_istio_guard_cache_age_seconds',
    help: 'Seconds since the cache of a kind last heard from the API server (list, event, bookmark or watch connect).',
    labelNames: names,
    registers: [registry],
    collect() {
      const now = Date.now();
      for (const r of cache.reflectors) this.set(labels(r), (now - r.lastProgress) / 1000);
    },
  });
  new Gauge({
    name: 'redis_istio_guard_cache_last_event_timestamp_seconds',
    help: 'Time of the last watch event (added, modified, deleted) applied to the cache of a kind.',
    labelNames: names,
    registers: [registry],
    collect() {
      for (const r of cache.reflectors) if (r.lastEvent !== undefined) this.set(labels(r), r.lastEvent / 1000);
    },
  });
  new Gauge({
    name: 'redis_istio_guard_cache_last_list_timestamp_seconds',
    help: 'Time the cache of a kind last finished a full list.',
    labelNames: names,
    registers: [registry],
    collect() {
      for (const r of cache.reflectors) if (r.lastList !== undefined) this.set(labels(r), r.lastList / 1000);
    },
  });
  new Gauge({
    name: 'redis_istio_guard_cache_objects',
    help: 'Objects held in the cache, by kind.',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect() {
      for (const kind of ['Service', 'Gateway', 'RedisEnterpriseCluster', 'RedisEnterpriseDatabase', 'Namespace'] as const)
        this.set({ kind }, cache.index.size(kind));
    },
  });
  const restarts = new Counter({
    name: 'redis_istio_guard_cache_restarts_total',
    help: 'Informer restarts, by kind and reason (error: a failed list or watch, expired: 410 Gone, watchdog: no sign of life).',
    labelNames: ['kind', 'namespace', 'reason'] as const,
    registers: [registry],
  });
  const relists = new Counter({
    name: 'redis_istio_guard_cache_relists_total',
    help: 'Full lists completed, by kind (the first, scheduled ones and recoveries).',
    labelNames: names,
    registers: [registry],
  });
  return { synced, available, restarts, relists };
}
