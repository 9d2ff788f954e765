/**
 * Cluster-aware VirtualService rules: do the destination Services, their ports and the referenced
 * Gateways exist? They read `ctx.cluster` (a ClusterView: map reads, never an API call) and say
 * nothing when there is none. When the view cannot prove an absence (a cache not synced, a
 * namespace not watched, a manifest set without that kind), a rule does not judge: it says the
 * check was skipped and why, and the view's `onCacheMiss` policy decides allow or deny.
 *
 * Also here: the per-object and per-namespace off-switch annotation, which the engine applies to
 * every rule.
 */
import { invalid, required } from './finding.ts';
import type { ClusterView, RuleContext, ServicePortView, ServiceView } from './context.ts';
import { hostMatches, isDNS1123Label, isIPAddress } from './hostname.ts';
import { arrayOf, field, isRecord, stringOf, type Json, type ObjectKind } from './object.ts';
import { defineRule, type Rule } from './rule.ts';
import type { Finding, KubeObject, Severity } from './types.ts';
import { forEachDestination, forEachGatewayRef } from './virtualservice.ts';

// ---------------------------------------------------------------------------------------------
// The off-switch annotation

/** `redis-istio-guard.io/skip-rules: "vs-destination-service, vs-gateway-exists"` on an object or its namespace. */
export const SKIP_RULES_ANNOTATION = 'redis-istio-guard.io/skip-rules';

const KIND_WORDS: Record<ObjectKind, string> = {
  RedisEnterpriseCluster: 'RedisEnterpriseCluster',
  Gateway: 'Gateway',
  VirtualService: 'VirtualService',
};

function ruleList(value: unknown): string[] {
  return typeof value === 'string' ? value.split(/[\s,]+/).filter(Boolean) : [];
}

/**
 * The rules switched off for this object by the annotation on the object or on its namespace,
 * with one warning per switched-off rule of this kind (and one per unknown rule id).
 */
export function switchedOff(
  obj: KubeObject,
  ctx: RuleContext,
  kind: ObjectKind,
  rules: readonly Rule[],
): { rules: Set<string>; notices: Finding[] } {
  const own = ruleList(field(field(field(obj, 'metadata'), 'annotations'), SKIP_RULES_ANNOTATION));
  let nsRules: string[] = [];
  try {
    nsRules = ctx.namespace ? ruleList(ctx.cluster?.namespace?.(ctx.namespace)?.annotations[SKIP_RULES_ANNOTATION]) : [];
  } catch {
    nsRules = [];
  }
  const off = new Set<string>();
  const notices: Finding[] = [];
  if (own.length === 0 && nsRules.length === 0) return { rules: off, notices };
  const known = new Set(rules.map((r) => r.id));
  const ofKind = new Set(rules.filter((r) => r.kind === kind).map((r) => r.id));
  const ownPath = `metadata.annotations[${SKIP_RULES_ANNOTATION}]`;
  const report = (ids: string[], where: string, path: string) => {
    for (const id of ids) {
      if (!known.has(id)) {
        notices.push({
          rule: 'skip-rules',
          path,
          value: id,
          severity: 'warning',
          notice: true,
          message: `the annotation ${SKIP_RULES_ANNOTATION} on ${where} names unknown rule ${JSON.stringify(id)}: it switches nothing off`,
        });
        continue;
      }
      if (!ofKind.has(id) || off.has(id)) continue;
      off.add(id);
      notices.push({
        rule: id,
        path,
        value: undefined,
        severity: 'warning',
        notice: true,
        message: `rule ${id} not checked: switched off by the annotation ${SKIP_RULES_ANNOTATION} on ${where}`,
      });
    }
  };
  report(own, `this ${KIND_WORDS[kind]}`, ownPath);
  report(nsRules, `namespace ${JSON.stringify(ctx.namespace)}`, 'metadata.namespace');
  return { rules: off, notices };
}

// ---------------------------------------------------------------------------------------------
// Helpers

const q = (s: string): string => JSON.stringify(s);

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  const m = a.length;
  const n = b.length;
  if (m === 0) return n;
  if (n === 0) return m;
  let prev2 = new Array<number>(n + 1).fill(0);
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  let cur = new Array<number>(n + 1).fill(0);
  for (let i = 1; i <= m; i++) {
    cur[0] = i;
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, (prev2[j - 2] ?? 0) + 1);
      cur[j] = v;
    }
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[n] ?? 0;
}

/** Up to `max` names close to `name`: case-insensitive, within max(2, length/3) edits, best first. */
export function closeNames(name: string, candidates: Iterable<string>, max = 3): string[] {
  const target = name.toLowerCase();
  const limit = Math.max(2, Math.floor(target.length / 3));
  const scored: [number, string][] = [];
  for (const c of candidates) {
    if (c === name || Math.abs(c.length - target.length) > limit) continue;
    const d = editDistance(target, c.toLowerCase());
    if (d <= limit) scored.push([d, c]);
  }
  scored.sort((x, y) => x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0));
  return scored.slice(0, max).map(([, c]) => c);
}

function didYouMean(names: string[]): string {
  if (names.length === 0) return '';
  return `; did you mean ${names.map(q).join(' or ')}?`;
}

function portsText(ports: readonly ServicePortView[]): string {
  return ports.map((p) => (p.name ? `${p.port} (${p.name})` : String(p.port))).join(', ');
}

/** Reads a ClusterView method defensively: a broken view must not fail an admission. */
function safe<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

// ---------------------------------------------------------------------------------------------
// Destination host resolution

export type HostForm = 'short' | 'name.ns' | 'name.ns.svc' | 'fqdn';

export interface ServiceRef {
  namespace: string;
  name: string;
  form: HostForm;
}

/**
 * Which Service a destination host names, the way Istio resolves it: a short name is in the
 * VirtualService's namespace; `name.ns.svc.<domain>` names Service `name` in `ns`. We also read
 * `name.ns.svc` and `name.ns` (the latter only when `ns` is a namespace we know of), because users
 * write them meaning a Service, although Istio does not expand them (see vs-destination-fqdn).
 * Anything else (outside the cluster domain, a ServiceEntry host, an IP, a pod name) is not judged.
 */
export function resolveServiceHost(host: string, ctx: RuleContext): ServiceRef | undefined {
  if (host === '' || host.includes('*') || isIPAddress(host) || host.endsWith('.')) return undefined;
  const labels = host.split('.');
  if (!labels.every(isDNS1123Label)) return undefined;
  if (labels.length === 1) return ctx.namespace ? { namespace: ctx.namespace, name: host, form: 'short' } : undefined;
  const domain = ctx.clusterDomain.replace(/^\.+|\.+$/g, '');
  const fqdnSuffix = `.svc.${domain}`;
  const [name, ns] = labels as [string, string];
  if (labels.length === 2) {
    const known = safe(() => ctx.cluster?.hasNamespace?.(ns) ?? false, false);
    return known ? { namespace: ns, name, form: 'name.ns' } : undefined;
  }
  if (labels.length === 3 && labels[2] === 'svc') return { namespace: ns, name, form: 'name.ns.svc' };
  if (domain && host.endsWith(fqdnSuffix) && host.length - fqdnSuffix.length === name.length + 1 + ns.length)
    return { namespace: ns, name, form: 'fqdn' };
  return undefined;
}

const fqdnOf = (ref: { namespace: string; name: string }, ctx: RuleContext) =>
  `${ref.name}.${ref.namespace}.svc.${ctx.clusterDomain.replace(/^\.+|\.+$/g, '')}`;

/** The host written in the same form as `ref` but for another Service name. */
function sameForm(ref: ServiceRef, name: string, ctx: RuleContext): string {
  switch (ref.form) {
    case 'short':
      return name;
    case 'name.ns':
      return `${name}.${ref.namespace}`;
    case 'name.ns.svc':
      return `${name}.${ref.namespace}.svc`;
    case 'fqdn':
      return fqdnOf({ namespace: ref.namespace, name }, ctx);
  }
}

interface DestinationSite {
  dest: Record<string, Json>;
  /** Path of the destination object, e.g. spec.tls[0].route[0].destination. */
  path: string;
  host: string;
}

/** Route destinations (http, tcp, tls) and http mirrors: what Istio's IST0101/IST0112 analyzer reads. */
function forEachServiceDestination(obj: KubeObject, visit: (site: DestinationSite) => void): void {
  const one = (dest: Json, path: string) => {
    if (!isRecord(dest)) return;
    const host = stringOf(dest.host);
    if (host !== undefined) visit({ dest, path, host });
  };
  forEachDestination(obj, one);
  arrayOf(field(obj.spec, 'http')).forEach((route, i) => {
    one(field(route, 'mirror'), `spec.http[${i}].mirror`);
    arrayOf(field(route, 'mirrors')).forEach((m, k) => one(field(m, 'destination'), `spec.http[${i}].mirrors[${k}].destination`));
  });
}

// ---------------------------------------------------------------------------------------------
// Skipped checks

/** Collects the sites a rule could not judge and says so once per reason. */
class Skipped {
  private readonly byReason = new Map<string, { path: string; values: string[] }>();
  private readonly id: string;
  private readonly natural: Severity;
  constructor(id: string, natural: Severity) {
    this.id = id;
    this.natural = natural;
  }

  add(cluster: ClusterView, kind: 'Service' | 'Gateway', namespace: string, path: string, value: string): void {
    const reason =
      safe(() => cluster.incompleteReason?.(kind, namespace), undefined) ||
      `the ${kind} cache cannot tell what exists in namespace ${q(namespace)}`;
    const entry = this.byReason.get(reason);
    if (!entry) this.byReason.set(reason, { path, values: [value] });
    else if (!entry.values.includes(value)) entry.values.push(value);
  }

  findings(cluster: ClusterView): Finding[] {
    const deny = safe(() => cluster.onCacheMiss, undefined) === 'deny';
    const out: Finding[] = [];
    for (const [reason, { path, values }] of this.byReason) {
      const what = `${values.map(q).join(', ')} (${path}${values.length > 1 ? ' and others' : ''})`;
      if (deny) {
        // A plain finding of the rule's own severity: its enforcement (deny, warn, off) applies.
        out.push({
          rule: this.id,
          path,
          value: values[0],
          severity: this.natural,
          message: `rule ${this.id} could not check ${what}: ${reason}; ${this.natural === 'error' ? 'denied' : 'warned'} because on-cache-miss is deny: retry once the webhook's cache has synced`,
        });
      } else {
        out.push({
          rule: this.id,
          path,
          value: values[0],
          severity: 'warning',
          notice: true,
          message: `rule ${this.id} skipped for ${what}: ${reason}; allowed without this check (on-cache-miss: allow)`,
        });
      }
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Destination rules

interface Resolved {
  site: DestinationSite;
  ref: ServiceRef;
  service: ServiceView;
}

/**
 * Visits every destination whose Service the view can judge. Sites whose namespace is not
 * complete go to `skipped`; sites without a Service go to `missing`.
 */
/** What every cluster rule body works with. */
interface ClusterRuleScope {
  id: string;
  obj: KubeObject;
  ctx: RuleContext;
  cluster: ClusterView;
  out: Finding[];
  skipped: Skipped;
}

/**
 * A VirtualService rule that needs the cluster view: without one (no cache, no manifests) it has
 * nothing to say; checks it cannot judge are collected and reported after its findings.
 */
function defineClusterRule(id: string, summary: string, skipSeverity: Severity, body: (scope: ClusterRuleScope) => void): Rule {
  return defineRule(id, 'VirtualService', summary, (ruleId, obj, ctx) => {
    const cluster = ctx.cluster;
    if (!cluster) return [];
    const out: Finding[] = [];
    const skipped = new Skipped(ruleId, skipSeverity);
    body({ id: ruleId, obj, ctx, cluster, out, skipped });
    return [...out, ...skipped.findings(cluster)];
  });
}

function destinations(
  obj: KubeObject,
  ctx: RuleContext,
  cluster: ClusterView,
  on: { found?(r: Resolved): void; missing?(site: DestinationSite, ref: ServiceRef): void; skipped?(site: DestinationSite, ref: ServiceRef): void },
): void {
  forEachServiceDestination(obj, (site) => {
    const ref = resolveServiceHost(site.host, ctx);
    if (!ref) return;
    const service = safe(() => cluster.service(ref.namespace, ref.name), undefined);
    if (service) return on.found?.({ site, ref, service });
    if (!safe(() => cluster.complete('Service', ref.namespace), false)) return on.skipped?.(site, ref);
    return on.missing?.(site, ref);
  });
}

export const vsDestinationService = defineClusterRule(
  'vs-destination-service',
  'Each destination host that names a cluster Service names one that exists, or that the Redis Enterprise operator will create (istioctl analyze: IST0101).',
  'error',
  ({ id, obj, ctx, cluster, out, skipped }) => {
    destinations(obj, ctx, cluster, {
      skipped: (site, ref) => skipped.add(cluster, 'Service', ref.namespace, `${site.path}.host`, site.host),
      missing: (site, ref) => {
        const path = `${site.path}.host`;
        const elsewhere = safe(() => cluster.serviceNamespaces?.(ref.name) ?? [], []).filter((ns) => ns !== ref.namespace);
        let hint: string;
        let fix: string | undefined;
        if (elsewhere.length > 0) {
          fix = fqdnOf({ namespace: elsewhere[0] ?? '', name: ref.name }, ctx);
          const shortNote = ref.form === 'short' ? ` (a short name means the VirtualService's namespace, ${q(ref.namespace)})` : '';
          hint = `; a Service ${q(ref.name)} exists in namespace ${elsewhere.map(q).join(', ')}${shortNote}: use ${q(fix)}`;
        } else {
          const close = closeNames(ref.name, safe(() => cluster.serviceNames(ref.namespace), []));
          hint = didYouMean(close.map((n) => sameForm(ref, n, ctx)));
          if (close.length > 0) fix = sameForm(ref, close[0] ?? '', ctx);
        }
        const why =
          `Service ${q(ref.name)} not found in namespace ${q(ref.namespace)}: traffic routed to it goes nowhere (istioctl analyze: IST0101); ` +
          `fix the host, or create the Service first (for a database, its RedisEnterpriseDatabase: the operator creates the Service)${hint}`;
        const f = invalid(id, path, site.host, why);
        out.push(fix !== undefined ? { ...f, fix } : f);
      },
    });
  },
);

export const vsDestinationPending = defineClusterRule(
  'vs-destination-pending',
  'A destination Service that the Redis Enterprise operator will create, but has not yet, is admitted with a warning.',
  'error',
  ({ id, obj, ctx, cluster, out, skipped }) => {
    destinations(obj, ctx, cluster, {
      found: ({ site, ref, service }) => {
        if (!service.predictedBy) return;
        out.push(
          invalid(
            id,
            `${site.path}.host`,
            site.host,
            `Service ${q(ref.name)} does not exist yet in namespace ${q(ref.namespace)}; the Redis Enterprise operator creates it for ${service.predictedBy}, so it counts as existing`,
            { severity: 'warning' },
          ),
        );
      },
    });
  },
);

export const vsDestinationFqdn = defineClusterRule(
  'vs-destination-fqdn',
  'A destination written "name.namespace" or "name.namespace.svc" names a Service, but Istio expands only short names: use the full name.',
  'error',
  ({ id, obj, ctx, cluster, out, skipped }) => {
    destinations(obj, ctx, cluster, {
      found: ({ site, ref }) => {
        if (ref.form !== 'name.ns' && ref.form !== 'name.ns.svc') return;
        const fix = fqdnOf(ref, ctx);
        out.push(
          invalid(
            id,
            `${site.path}.host`,
            site.host,
            `Istio expands only a short name to a Service; ${q(site.host)} matches no host in Istio's registry unless a ServiceEntry declares it, so the route goes nowhere (istioctl analyze: IST0101)`,
            { severity: 'warning', fix },
          ),
        );
      },
    });
  },
);

export const vsDestinationServicePort = defineClusterRule(
  'vs-destination-service-port',
  'destination.port.number is a port of the destination Service; a Service with several ports needs one (istioctl analyze: IST0101 host:port, IST0112).',
  'error',
  ({ id, obj, ctx, cluster, out, skipped }) => {
    destinations(obj, ctx, cluster, {
      skipped: (site, ref) => {
        if (field(site.dest, 'port') !== undefined) skipped.add(cluster, 'Service', ref.namespace, `${site.path}.port`, site.host);
      },
      found: ({ site, ref, service }) => {
        const ports = service.ports;
        const portSel = site.dest.port;
        const number = field(portSel, 'number');
        const svc = `Service ${q(ref.name)} in namespace ${q(ref.namespace)}`;
        if (service.predictedBy) {
          // Not there yet: what the operator will create is a prediction, so only warn.
          if (ports.length === 0 || typeof number !== 'number' || ports.some((p) => p.port === number)) return;
          out.push(
            invalid(
              id,
              `${site.path}.port.number`,
              number,
              `${svc} does not exist yet; the operator creates it for ${service.predictedBy} with port ${portsText(ports)}`,
              { severity: 'warning', ...(ports.length === 1 ? { fix: String(ports[0]?.port) } : {}) },
            ),
          );
          return;
        }
        if (portSel === undefined || portSel === null) {
          if (ports.length > 1)
            out.push(
              required(
                id,
                `${site.path}.port`,
                `${svc} exposes several ports, ${portsText(ports)}: name one in port.number (istioctl analyze: IST0112)`,
              ),
            );
          return;
        }
        if (typeof number !== 'number' || !Number.isInteger(number) || number < 1 || number > 65535) return; // vs-destination-port says it
        if (ports.some((p) => p.port === number)) return;
        const why = `${svc} has no port ${number}, so traffic routed to it goes nowhere (istioctl analyze: IST0101 host:port)`;
        const f = invalid(id, `${site.path}.port.number`, number, `${why}; ${ports.length === 0 ? 'it has no ports' : `its ports: ${portsText(ports)}`}`);
        // A number as the fix: `use 12000`, not `use "12000"`.
        out.push(ports.length === 1 && ports[0] ? { ...f, message: `${f.message}; use ${ports[0].port}`, fix: String(ports[0].port) } : f);
      },
    });
  },
);

// ---------------------------------------------------------------------------------------------
// Gateway rules

interface GatewayRef {
  namespace: string;
  name: string;
}

/** Istio's resolveGatewayName: `ns/name`, `./name`, a short name, or the legacy `name.ns[...]`. */
export function resolveGatewayRef(ref: string, vsNamespace: string): GatewayRef | undefined {
  let namespace: string;
  let name: string;
  const slash = ref.indexOf('/');
  if (slash >= 0) {
    namespace = ref.slice(0, slash);
    name = ref.slice(slash + 1);
    if (namespace === '.') namespace = vsNamespace;
  } else if (ref.includes('.')) {
    const labels = ref.split('.');
    name = labels[0] ?? '';
    namespace = labels[1] ?? '';
  } else {
    namespace = vsNamespace;
    name = ref;
  }
  return isDNS1123Label(namespace) && isDNS1123Label(name) ? { namespace, name } : undefined;
}

function forEachResolvedGateway(obj: KubeObject, ctx: RuleContext, visit: (ref: GatewayRef, written: string, path: string) => void): void {
  forEachGatewayRef(obj, (written, path) => {
    if (written === 'mesh') return;
    const ref = resolveGatewayRef(written, ctx.namespace);
    if (ref) visit(ref, written, path);
  });
}

export const vsGatewayExists = defineClusterRule(
  'vs-gateway-exists',
  'Each referenced Gateway (spec.gateways, match[].gateways) exists (istioctl analyze: IST0101); a warning, since a deploy may apply it next.',
  'warning',
  ({ id, obj, ctx, cluster, out, skipped }) => {
    forEachResolvedGateway(obj, ctx, (ref, written, path) => {
      if (safe(() => cluster.gateway(ref.namespace, ref.name), undefined)) return;
      if (!safe(() => cluster.complete('Gateway', ref.namespace), false)) return skipped.add(cluster, 'Gateway', ref.namespace, path, written);
      const close = closeNames(ref.name, safe(() => cluster.gatewayNames?.(ref.namespace) ?? [], []));
      const spelled = (n: string) => (written.includes('/') ? `${written.slice(0, written.indexOf('/'))}/${n}` : n);
      const f = invalid(
        id,
        path,
        written,
        `Gateway ${q(ref.name)} not found in namespace ${q(ref.namespace)} (istioctl analyze: IST0101); apply the Gateway, or correct the reference${didYouMean(close.map(spelled))}`,
        { severity: 'warning' },
      );
      out.push(close.length > 0 ? { ...f, fix: spelled(close[0] ?? '') } : f);
    });
  },
);

/** Istio's sanitizeServerHostNamespace + host.NamesForNamespace: the Gateway hosts a namespace sees. */
export function gatewayHostsVisibleFrom(hosts: readonly string[], gatewayNamespace: string, vsNamespace: string): string[] {
  const out: string[] = [];
  for (const h of hosts) {
    const slash = h.indexOf('/');
    if (slash < 0) {
      out.push(h);
      continue;
    }
    let ns = h.slice(0, slash);
    const name = h.slice(slash + 1);
    if (ns === '*' && name === '*') return ['*'];
    if (ns === '.') ns = gatewayNamespace;
    if (ns === '*' || ns === vsNamespace) out.push(name);
  }
  return out;
}

export const vsGatewayHost = defineClusterRule(
  'vs-gateway-host',
  'At least one VirtualService host is served by each referenced Gateway (istioctl analyze: IST0132).',
  'warning',
  ({ id, obj, ctx, cluster, out, skipped }) => {
    const vsHosts = arrayOf(field(obj.spec, 'hosts')).filter((h): h is string => typeof h === 'string');
    if (vsHosts.length === 0) return; // a delegate: bound through its parent
    const seen = new Set<string>();
    forEachResolvedGateway(obj, ctx, (ref, written, path) => {
      const key = `${ref.namespace}/${ref.name}`;
      if (seen.has(key)) return;
      seen.add(key);
      const gw = safe(() => cluster.gateway(ref.namespace, ref.name), undefined);
      if (!gw) {
        if (!safe(() => cluster.complete('Gateway', ref.namespace), false)) skipped.add(cluster, 'Gateway', ref.namespace, path, written);
        return; // a missing Gateway is vs-gateway-exists's finding
      }
      const visible = gatewayHostsVisibleFrom(gw.hosts, gw.namespace, ctx.namespace);
      if (visible.some((gh) => vsHosts.some((vh) => hostMatches(gh, vh)))) return;
      const served =
        gw.hosts.length === 0
          ? 'which has no hosts'
          : visible.length === 0
            ? `whose hosts [${gw.hosts.join(', ')}] are not visible from namespace ${q(ctx.namespace)}`
            : `which serves [${visible.join(', ')}]`;
      out.push(
        invalid(
          id,
          path,
          written,
          `none of the VirtualService hosts [${vsHosts.join(', ')}] is served by Gateway ${key}, ${served} (istioctl analyze: IST0132): traffic through this Gateway never reaches these routes; add the host to the Gateway, or bind the VirtualService to the Gateway that serves it`,
          { severity: 'warning' },
        ),
      );
    });
  },
);

export const clusterRules: Rule[] = [
  vsDestinationService,
  vsDestinationPending,
  vsDestinationFqdn,
  vsDestinationServicePort,
  vsGatewayExists,
  vsGatewayHost,
];
