/**
 * A slim, in-memory index of the cluster objects the cluster-aware rules read: Services (name and
 * ports), Gateways (hosts), RedisEnterpriseClusters and RedisEnterpriseDatabases (the Services the
 * operator will create for them) and Namespaces (our own annotations only).
 *
 * No Kubernetes I/O here: the informers (src/cluster/informers.ts) feed it from watches, and the
 * offline `check` command feeds it parsed manifests. Every input is untrusted JSON: a malformed
 * object is kept as far as it makes sense (a Service without ports has no ports) or ignored
 * (no name), and no lookup ever throws.
 */
import type {
  CacheMissPolicy,
  ClusterView,
  GatewayView,
  NamespaceView,
  ServicePortView,
  ServiceView,
} from '../rules/context.ts';
import { arrayOf, field, isRecord, stringOf } from '../rules/object.ts';

export type IndexedKind = 'Service' | 'Gateway' | 'RedisEnterpriseCluster' | 'RedisEnterpriseDatabase' | 'Namespace';

export const INDEXED_KINDS: readonly IndexedKind[] = ['Service', 'Gateway', 'RedisEnterpriseCluster', 'RedisEnterpriseDatabase', 'Namespace'];

/** The REC's Services: the API on 9443 and the admin console on 8443 (redis-enterprise-facts §1.5). */
export const REC_API_PORT = 9443;
export const REC_UI_PORT = 8443;

/** Annotations kept on Namespaces: ours only. */
export const ANNOTATION_PREFIX = 'redis-istio-guard.io/';

/**
 * Whether absence of a kind in a namespace can be judged: `true`, or the reason it cannot
 * (said in the warning when a check is skipped).
 */
export type Completeness = (kind: 'Service' | 'Gateway', namespace: string, index: ClusterIndex) => true | string;

/**
 * The default for manifests (`check`): a namespace is complete for a kind when the input holds at
 * least one object of that kind there (for Services, a REC or REDB counts), since a manifest set
 * without any Service in a namespace cannot prove that one is missing.
 */
export const completeWhereSeen: Completeness = (kind, namespace, index) => {
  const seen = kind === 'Service' ? index.serviceNames(namespace).length > 0 : index.gatewayNames(namespace).length > 0;
  return seen || `no ${kind} in namespace ${JSON.stringify(namespace)} among the given objects`;
};

/** Every absence is meaningful: the index holds the whole world. */
export const alwaysComplete: Completeness = () => true;

export interface ClusterIndexOptions {
  completeness?: Completeness;
  onCacheMiss?: CacheMissPolicy;
}

/** REC and REDB facts kept to predict the operator's Services. */
interface Prediction {
  /** "RedisEnterpriseCluster rec" or "RedisEnterpriseDatabase db1", for the warning. */
  by: string;
  services: { name: string; ports: readonly ServicePortView[] }[];
}

const EMPTY: readonly ServicePortView[] = Object.freeze([]);

function validPort(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535 ? v : undefined;
}

/** Identifies a supported object by apiVersion and kind; undefined for anything else. */
export function indexedKindOf(obj: unknown): IndexedKind | undefined {
  const apiVersion = stringOf(field(obj, 'apiVersion'));
  const kind = stringOf(field(obj, 'kind'));
  if (apiVersion === undefined || kind === undefined) return undefined;
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  if (group === '' && (kind === 'Service' || kind === 'Namespace')) return kind;
  if (group === 'networking.istio.io' && kind === 'Gateway') return kind;
  if (group === 'app.redislabs.com' && (kind === 'RedisEnterpriseCluster' || kind === 'RedisEnterpriseDatabase')) return kind;
  return undefined;
}

function metaName(obj: unknown): string | undefined {
  const name = stringOf(field(field(obj, 'metadata'), 'name'));
  return name ? name : undefined;
}

function metaNamespace(obj: unknown, fallback: string): string {
  const ns = stringOf(field(field(obj, 'metadata'), 'namespace'));
  return ns ? ns : fallback;
}

type NsMap<T> = Map<string, Map<string, T>>;

function put<T>(m: NsMap<T>, ns: string, name: string, v: T): void {
  let inner = m.get(ns);
  if (!inner) m.set(ns, (inner = new Map()));
  inner.set(name, v);
}

function drop<T>(m: NsMap<T>, ns: string, name: string): boolean {
  const inner = m.get(ns);
  if (!inner?.delete(name)) return false;
  if (inner.size === 0) m.delete(ns);
  return true;
}

export class ClusterIndex implements ClusterView {
  readonly onCacheMiss: CacheMissPolicy;
  private completeness: Completeness;
  /** namespace → name → ports. Identical port lists share one frozen array. */
  private readonly services: NsMap<readonly ServicePortView[]> = new Map();
  private readonly gateways: NsMap<readonly string[]> = new Map();
  /** namespace → REC/REDB key ("RedisEnterpriseCluster/rec") → what it predicts. */
  private readonly predictions: NsMap<Prediction> = new Map();
  /** namespace → predicted Service name → how many sources predict it (usually 1). */
  private readonly predictedNames: NsMap<number> = new Map();
  private readonly namespaces = new Map<string, Readonly<Record<string, string>>>();
  /** Port lists by shape, so 50,000 Services with "http:80" hold one array. */
  private readonly portShapes = new Map<string, readonly ServicePortView[]>();
  private readonly counts: Record<IndexedKind, number> = {
    Service: 0,
    Gateway: 0,
    RedisEnterpriseCluster: 0,
    RedisEnterpriseDatabase: 0,
    Namespace: 0,
  };

  constructor(opts: ClusterIndexOptions = {}) {
    this.completeness = opts.completeness ?? completeWhereSeen;
    this.onCacheMiss = opts.onCacheMiss ?? 'allow';
  }

  setCompleteness(completeness: Completeness): void {
    this.completeness = completeness;
  }

  // ---- writes ----

  /**
   * Adds or replaces an object. `kind` is needed for list items, which the API server sends
   * without apiVersion and kind; otherwise it is read from the object. `namespace` is the
   * fallback for objects without metadata.namespace (manifests applied with `-n`).
   * Returns false for objects it does not keep (other kinds, no name).
   */
  upsert(obj: unknown, kind: IndexedKind | undefined = indexedKindOf(obj), namespace = 'default'): boolean {
    if (!kind || !isRecord(obj)) return false;
    const name = metaName(obj);
    if (!name) return false;
    if (kind === 'Namespace') {
      this.count(kind, !this.namespaces.has(name));
      this.namespaces.set(name, ourAnnotations(field(field(obj, 'metadata'), 'annotations')));
      return true;
    }
    const ns = metaNamespace(obj, namespace);
    switch (kind) {
      case 'Service':
        this.count(kind, !this.services.get(ns)?.has(name));
        put(this.services, ns, name, this.shape(servicePorts(obj)));
        return true;
      case 'Gateway':
        this.count(kind, !this.gateways.get(ns)?.has(name));
        put(this.gateways, ns, name, gatewayHosts(obj));
        return true;
      case 'RedisEnterpriseCluster':
      case 'RedisEnterpriseDatabase': {
        const key = `${kind}/${name}`;
        const existed = this.unpredict(ns, key);
        this.count(kind, !existed);
        const p = kind === 'RedisEnterpriseCluster' ? recPrediction(name) : redbPrediction(name, obj, (ports) => this.shape(ports));
        put(this.predictions, ns, key, p);
        for (const s of p.services) put(this.predictedNames, ns, s.name, (this.predictedNames.get(ns)?.get(s.name) ?? 0) + 1);
        return true;
      }
    }
  }

  /** Removes an object given as a whole (a watch DELETED event, a manifest). */
  delete(obj: unknown, kind: IndexedKind | undefined = indexedKindOf(obj), namespace = 'default'): boolean {
    const name = metaName(obj);
    if (!kind || !name) return false;
    return this.remove(kind, kind === 'Namespace' ? '' : metaNamespace(obj, namespace), name);
  }

  /** Removes by key; `namespace` is ignored for Namespaces. */
  remove(kind: IndexedKind, namespace: string, name: string): boolean {
    let removed: boolean;
    switch (kind) {
      case 'Namespace':
        removed = this.namespaces.delete(name);
        break;
      case 'Service':
        removed = drop(this.services, namespace, name);
        break;
      case 'Gateway':
        removed = drop(this.gateways, namespace, name);
        break;
      default:
        removed = this.unpredict(namespace, `${kind}/${name}`);
    }
    if (removed) this.counts[kind]--;
    return removed;
  }

  /**
   * The keys held for a kind, optionally in one namespace: [namespace, name] pairs
   * (namespace '' for Namespaces). A relist uses it to find what disappeared.
   */
  keys(kind: IndexedKind, namespace?: string): [string, string][] {
    const out: [string, string][] = [];
    const collect = <T>(m: NsMap<T>, filter?: (key: string) => string | undefined) => {
      for (const [ns, inner] of m) {
        if (namespace !== undefined && ns !== namespace) continue;
        for (const key of inner.keys()) {
          const name = filter ? filter(key) : key;
          if (name !== undefined) out.push([ns, name]);
        }
      }
    };
    switch (kind) {
      case 'Namespace':
        for (const name of this.namespaces.keys()) if (namespace === undefined || namespace === name) out.push(['', name]);
        break;
      case 'Service':
        collect(this.services);
        break;
      case 'Gateway':
        collect(this.gateways);
        break;
      default: {
        const prefix = `${kind}/`;
        collect(this.predictions, (key) => (key.startsWith(prefix) ? key.slice(prefix.length) : undefined));
      }
    }
    return out;
  }

  /** Objects held per kind (RECs and REDBs count once each, not per predicted Service). */
  size(kind: IndexedKind): number {
    return this.counts[kind];
  }

  clear(): void {
    for (const m of [this.services, this.gateways, this.predictions, this.predictedNames]) m.clear();
    this.namespaces.clear();
    for (const k of INDEXED_KINDS) this.counts[k] = 0;
  }

  // ---- ClusterView ----

  service(namespace: string, name: string): ServiceView | undefined {
    const ports = this.services.get(namespace)?.get(name);
    if (ports) return { namespace, name, ports: [...ports] };
    const preds = this.predictions.get(namespace);
    if (!preds || !this.predictedNames.get(namespace)?.has(name)) return undefined;
    // Deterministic when two sources predict one name: the REC first, then by name.
    const keys = [...preds.keys()].sort();
    for (const key of keys) {
      const p = preds.get(key);
      const s = p?.services.find((x) => x.name === name);
      if (p && s) return { namespace, name, ports: [...s.ports], predictedBy: p.by };
    }
    return undefined;
  }

  serviceNames(namespace: string): string[] {
    const names = new Set(this.services.get(namespace)?.keys());
    for (const n of this.predictedNames.get(namespace)?.keys() ?? []) names.add(n);
    return [...names].sort();
  }

  serviceNamespaces(name: string): string[] {
    const out = new Set<string>();
    for (const [ns, inner] of this.services) if (inner.has(name)) out.add(ns);
    for (const [ns, inner] of this.predictedNames) if (inner.has(name)) out.add(ns);
    return [...out].sort();
  }

  gateway(namespace: string, name: string): GatewayView | undefined {
    const hosts = this.gateways.get(namespace)?.get(name);
    return hosts ? { namespace, name, hosts: [...hosts] } : undefined;
  }

  gatewayNames(namespace: string): string[] {
    return [...(this.gateways.get(namespace)?.keys() ?? [])].sort();
  }

  hasNamespace(namespace: string): boolean {
    return (
      this.namespaces.has(namespace) ||
      this.services.has(namespace) ||
      this.gateways.has(namespace) ||
      this.predictions.has(namespace)
    );
  }

  namespace(name: string): NamespaceView | undefined {
    const annotations = this.namespaces.get(name);
    return annotations ? { name, annotations } : undefined;
  }

  complete(kind: 'Service' | 'Gateway', namespace: string): boolean {
    return this.judge(kind, namespace) === true;
  }

  incompleteReason(kind: 'Service' | 'Gateway', namespace: string): string {
    const r = this.judge(kind, namespace);
    return r === true ? '' : r;
  }

  // ---- internals ----

  private judge(kind: 'Service' | 'Gateway', namespace: string): true | string {
    try {
      return this.completeness(kind, namespace, this);
    } catch (err) {
      return `cannot tell whether the ${kind} cache is complete: ${String(err)}`;
    }
  }

  private count(kind: IndexedKind, added: boolean): void {
    if (added) this.counts[kind]++;
  }

  private unpredict(ns: string, key: string): boolean {
    const p = this.predictions.get(ns)?.get(key);
    if (!p) return false;
    drop(this.predictions, ns, key);
    for (const s of p.services) {
      const n = (this.predictedNames.get(ns)?.get(s.name) ?? 1) - 1;
      if (n <= 0) drop(this.predictedNames, ns, s.name);
      else put(this.predictedNames, ns, s.name, n);
    }
    return true;
  }

  private shape(ports: ServicePortView[]): readonly ServicePortView[] {
    if (ports.length === 0) return EMPTY;
    const key = ports.map((p) => `${p.name ?? ''}:${p.port}`).join(',');
    let shared = this.portShapes.get(key);
    if (!shared) {
      shared = Object.freeze(ports.map((p) => Object.freeze(p.name !== undefined ? { name: p.name, port: p.port } : { port: p.port })));
      // The shape table is bounded by the variety of port lists, not by the number of Services;
      // cap it anyway so a pathological cluster cannot grow it without limit.
      if (this.portShapes.size < 100_000) this.portShapes.set(key, shared);
    }
    return shared;
  }
}

function servicePorts(obj: unknown): ServicePortView[] {
  const out: ServicePortView[] = [];
  for (const p of arrayOf(field(field(obj, 'spec'), 'ports'))) {
    const port = validPort(field(p, 'port'));
    if (port === undefined) continue;
    const name = stringOf(field(p, 'name'));
    out.push(name ? { name, port } : { port });
  }
  return out;
}

function gatewayHosts(obj: unknown): readonly string[] {
  const hosts: string[] = [];
  for (const server of arrayOf(field(field(obj, 'spec'), 'servers')))
    for (const h of arrayOf(field(server, 'hosts'))) if (typeof h === 'string') hosts.push(h);
  return Object.freeze(hosts);
}

function ourAnnotations(v: unknown): Readonly<Record<string, string>> {
  if (!isRecord(v)) return Object.freeze({});
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) if (k.startsWith(ANNOTATION_PREFIX) && typeof val === 'string') out[k] = val;
  return Object.freeze(out);
}

function recPrediction(name: string): Prediction {
  return {
    by: `RedisEnterpriseCluster ${JSON.stringify(name)}`,
    services: [
      { name, ports: Object.freeze([Object.freeze({ name: 'api', port: REC_API_PORT })]) },
      { name: `${name}-ui`, ports: Object.freeze([Object.freeze({ name: 'ui', port: REC_UI_PORT })]) },
    ],
  };
}

/**
 * A REDB `db1` brings `db1` and `db1-headless`, on `databaseServicePort` when set, else on
 * `databasePort`. Without either the operator picks a port: the Service is predicted with no
 * known port, and the port rule does not judge it.
 */
function redbPrediction(name: string, obj: unknown, shape: (ports: ServicePortView[]) => readonly ServicePortView[]): Prediction {
  const spec = field(obj, 'spec');
  const port = validPort(field(spec, 'databaseServicePort')) ?? validPort(field(spec, 'databasePort'));
  const ports = port === undefined ? EMPTY : shape([{ name: 'redis', port }]);
  return {
    by: `RedisEnterpriseDatabase ${JSON.stringify(name)}`,
    services: [
      { name, ports },
      { name: `${name}-headless`, ports },
    ],
  };
}
