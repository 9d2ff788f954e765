/** What a rule may know besides the object itself. Everything here is read-only and in memory. */

export type Enforcement = 'deny' | 'warn' | 'off';

/** A Service port as the cluster-aware rules need it. */
export interface ServicePortView {
  name?: string;
  port: number;
}

export interface ServiceView {
  namespace: string;
  name: string;
  ports: ServicePortView[];
  /** Predicted from a REC or REDB: the operator has not created it yet. */
  predictedBy?: string;
}

export interface GatewayView {
  namespace: string;
  name: string;
  /** Every servers[].hosts entry, as written. */
  hosts: string[];
}

/** A Namespace as the rules need it: only our own (`redis-istio-guard.io/`) annotations are kept. */
export interface NamespaceView {
  name: string;
  annotations: Readonly<Record<string, string>>;
}

/** What to do when a cluster-aware rule cannot judge absence (cache not synced, namespace not watched). */
export type CacheMissPolicy = 'allow' | 'deny';

/**
 * A read-only view of the cluster (or of the manifests given to `check`). Lookups are map reads.
 * `complete(kind, namespace)` says whether an absence is meaningful: a cache that has not synced,
 * or a manifest set without any Service in that namespace, cannot prove that something is missing.
 */
export interface ClusterView {
  service(namespace: string, name: string): ServiceView | undefined;
  serviceNames(namespace: string): string[];
  gateway(namespace: string, name: string): GatewayView | undefined;
  complete(kind: 'Service' | 'Gateway', namespace: string): boolean;
  /** Why absence cannot be judged now, for the warning that says a check was skipped. */
  incompleteReason?(kind: 'Service' | 'Gateway', namespace: string): string;
  /** Gateway names in a namespace, for "did you mean" hints. */
  gatewayNames?(namespace: string): string[];
  /** Namespaces that hold a Service (real or predicted) of this name, for cross-namespace hints. */
  serviceNamespaces?(name: string): string[];
  /** Whether the namespace is known to exist (a Namespace, or any object in it, was seen). */
  hasNamespace?(namespace: string): boolean;
  /** The namespace's own annotations, when Namespaces are watched or given. */
  namespace?(name: string): NamespaceView | undefined;
  /** When absence cannot be judged: allow with a warning (default) or deny. */
  readonly onCacheMiss?: CacheMissPolicy;
}

export interface RuleContext {
  /** Namespace of the object under review ('' when unknown, e.g. a manifest without one). */
  namespace: string;
  /** Cluster domain used to resolve `name.ns.svc.<domain>` hosts. */
  clusterDomain: string;
  cluster?: ClusterView;
}

export function defaultContext(namespace = ''): RuleContext {
  return { namespace, clusterDomain: 'cluster.local' };
}
