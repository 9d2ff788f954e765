/**
 * VirtualService rules. Istio's grammar for hosts, sniHosts, destinations and gateway references,
 * plus our stricter rules (listed in the README): no partial wildcard in hosts or sniHosts, where
 * no valid Gateway host can ever match it, and no wildcard in a destination, which names one Service.
 */
import { forbidden, invalid, required, wrongType } from './finding.ts';
import {
  HostIndex,
  isDNS1123Label,
  isIPAddress,
  leftmostWildcardFix,
  q,
  validateFQDN,
  validatePartialWildcard,
  validateWildcardDomain,
  validateWildcardDomainForVirtualServiceBoundToGateway,
} from './hostname.ts';
import { arrayOf, field, isRecord, stringOf, type Json } from './object.ts';
import { defineRule, type Rule } from './rule.ts';
import type { Finding, KubeObject } from './types.ts';

const MESH = 'mesh';
/** Enough to show the problem; a pathological list would otherwise make a finding per pair. */
const MAX_DUPLICATE_FINDINGS = 100;

/** The facts about a VirtualService that decide which host grammar Istio applies. */
interface Binding {
  hosts: string[];
  gateways: string[];
  /** gateways given and none is `mesh`: the gateway-only grammar. */
  gatewayOnly: boolean;
  /** some tls match has sniHosts */
  hasSni: boolean;
  /** Istio's verdict per sniHost, shared by the syntax and the coverage rule. */
  sniErrors: Map<string, string | undefined>;
}

/** Several rules ask about the same object; work it out once per object. */
const bindings = new WeakMap<object, Binding>();

function binding(obj: KubeObject): Binding {
  const cached = bindings.get(obj);
  if (cached) return cached;
  const spec = obj.spec;
  const hosts = arrayOf(field(spec, 'hosts')).filter((h): h is string => typeof h === 'string');
  const gateways = arrayOf(field(spec, 'gateways')).filter((g): g is string => typeof g === 'string');
  const hasSni = arrayOf(field(spec, 'tls')).some((route) =>
    arrayOf(field(route, 'match')).some((m) => arrayOf(field(m, 'sniHosts')).length > 0),
  );
  const b: Binding = { hosts, gateways, gatewayOnly: gateways.length > 0 && !gateways.includes(MESH), hasSni, sniErrors: new Map() };
  bindings.set(obj, b);
  return b;
}

const STRICT_PARTIAL =
  'no Gateway host can match it (Istio rejects partial wildcards in Gateways) and Envoy does not support them in SNI names';

/** Istio's verdict on one spec.hosts entry. */
function hostError(host: string, b: Binding): string | undefined {
  const err = b.gatewayOnly
    ? validateWildcardDomainForVirtualServiceBoundToGateway(b.hasSni, host)
    : validateWildcardDomain(host);
  if (err) return isIPAddress(host) ? undefined : err;
  if (!b.gatewayOnly && host === '*') return 'wildcard host * is not allowed for virtual services bound to the mesh gateway';
  return undefined;
}

export const vsHost = defineRule(
  'vs-host',
  'VirtualService',
  'spec.hosts entries are a full leftmost wildcard, an FQDN, a short name or an IP (stricter than Istio: no partial wildcard).',
  (id, obj) => {
    const out: Finding[] = [];
    const spec = obj.spec;
    const hosts = field(spec, 'hosts');
    if (hosts !== undefined && hosts !== null && !Array.isArray(hosts)) return [wrongType(id, 'spec.hosts', hosts, 'a list of strings')];
    const b = binding(obj);
    if (arrayOf(hosts).length === 0) {
      // No hosts: a delegate VirtualService, which Istio limits to http routes.
      if (b.gateways.length > 0) out.push(forbidden(id, 'spec.gateways', 'delegate virtual service must have no gateways specified'));
      if (arrayOf(field(spec, 'tls')).length > 0) out.push(forbidden(id, 'spec.tls', 'delegate virtual service must have no tls route specified'));
      if (arrayOf(field(spec, 'tcp')).length > 0) out.push(forbidden(id, 'spec.tcp', 'delegate virtual service must have no tcp route specified'));
      return out;
    }
    arrayOf(hosts).forEach((host, i) => {
      const path = `spec.hosts[${i}]`;
      if (typeof host !== 'string') return out.push(wrongType(id, path, host, 'a string'));
      const err = hostError(host, b);
      if (err) return out.push(invalid(id, path, host, err));
      if (validatePartialWildcard(host) && !isIPAddress(host))
        return out.push(invalid(id, path, host, `partial wildcard ${q(host)} not allowed: ${STRICT_PARTIAL}`, { fix: leftmostWildcardFix(host) }));
      return undefined;
    });
    return out;
  },
);

export const vsDuplicateHost = defineRule(
  'vs-duplicate-host',
  'VirtualService',
  'No two spec.hosts entries overlap (Istio: "duplicate hosts in virtual service").',
  (id, obj) => {
    const b = binding(obj);
    // Istio compares hosts only when every host passed its own checks.
    if (b.hosts.length !== arrayOf(field(obj.spec, 'hosts')).length) return [];
    if (b.hosts.some((h) => hostError(h, b) !== undefined)) return [];
    return new HostIndex(b.hosts).overlappingPairs(MAX_DUPLICATE_FINDINGS).map(([i, j]) => {
      const hi = b.hosts[i] as string;
      const hj = b.hosts[j] as string;
      return invalid(id, `spec.hosts[${j}]`, hj, `duplicate hosts in virtual service: ${hi} & ${hj}`);
    });
  },
);

/** Visits every tls[].match[] entry with its path. */
function forEachTlsMatch(obj: KubeObject, visit: (match: Json, path: string) => void): void {
  arrayOf(field(obj.spec, 'tls')).forEach((route, i) =>
    arrayOf(field(route, 'match')).forEach((match, k) => visit(match, `spec.tls[${i}].match[${k}]`)),
  );
}

/** Istio's own verdict on a sniHost's syntax (validateSniHost), before our stricter rule. */
function istioSniError(sni: string, b: Binding): string | undefined {
  if (b.sniErrors.has(sni)) return b.sniErrors.get(sni);
  // For sniHosts Istio tests only for the literal "mesh": no gateways counts as gateway-bound here.
  const err = b.gateways.includes(MESH) ? validateWildcardDomain(sni) : validateWildcardDomainForVirtualServiceBoundToGateway(true, sni);
  b.sniErrors.set(sni, err);
  return err;
}

/** A sniHost's syntax verdict: undefined when fine, or a finding. */
function sniSyntax(id: string, path: string, sni: string, b: Binding): Finding | undefined {
  const err = istioSniError(sni, b);
  if (err) {
    if (isIPAddress(sni))
      return invalid(id, path, sni, `using an IP address (${q(sni)}) goes against SNI spec and most clients do not support this`, {
        severity: 'warning',
      });
    return invalid(id, path, sni, err);
  }
  if (validatePartialWildcard(sni))
    return invalid(id, path, sni, `partial wildcard ${q(sni)} not allowed: ${STRICT_PARTIAL}`, { fix: leftmostWildcardFix(sni) });
  return undefined;
}

export const vsSniHost = defineRule(
  'vs-sni-host',
  'VirtualService',
  'spec.tls[].match[].sniHosts entries are a full leftmost wildcard or an FQDN (stricter than Istio: no partial wildcard).',
  (id, obj) => {
    const out: Finding[] = [];
    const b = binding(obj);
    forEachTlsMatch(obj, (match, mpath) =>
      arrayOf(field(match, 'sniHosts')).forEach((sni, n) => {
        const path = `${mpath}.sniHosts[${n}]`;
        if (typeof sni !== 'string') return out.push(wrongType(id, path, sni, 'a string'));
        const f = sniSyntax(id, path, sni, b);
        return f ? out.push(f) : undefined;
      }),
    );
    return out;
  },
);

/** The covered name closest to an uncovered sniHost: `db1-redis.example.com` under `*.redis.example.com`. */
function coveredAlternative(sni: string, index: HostIndex): string | undefined {
  for (let i = sni.indexOf('-'); i > 0; i = sni.indexOf('-', i + 1)) {
    const candidate = `${sni.slice(0, i)}.${sni.slice(i + 1)}`;
    if (index.covers(candidate)) return candidate;
  }
  return undefined;
}

export const vsSniCovered = defineRule(
  'vs-sni-covered',
  'VirtualService',
  'Every sniHost is covered by a spec.hosts entry (Istio: "is not a compatible subset of any of the virtual service hosts").',
  (id, obj) => {
    const out: Finding[] = [];
    const b = binding(obj);
    const index = new HostIndex(b.hosts);
    forEachTlsMatch(obj, (match, mpath) =>
      arrayOf(field(match, 'sniHosts')).forEach((sni, n) => {
        // Istio judges coverage once its own syntax check passed; IPs only get its warning.
        if (typeof sni !== 'string' || istioSniError(sni, b) !== undefined) return;
        if (index.covers(sni)) return;
        const why = `SNI host ${q(sni)} is not a compatible subset of any of the virtual service hosts: [${b.hosts.join(', ')}]`;
        out.push(invalid(id, `${mpath}.sniHosts[${n}]`, sni, why, { fix: coveredAlternative(sni, index) }));
      }),
    );
    return out;
  },
);

export const vsRoutes = defineRule(
  'vs-routes',
  'VirtualService',
  'A VirtualService has routes; each tls route has a match with sniHosts and a route; match ports are 1..65535.',
  (id, obj) => {
    const out: Finding[] = [];
    const spec = obj.spec;
    const tls = arrayOf(field(spec, 'tls'));
    if (arrayOf(field(spec, 'http')).length === 0 && arrayOf(field(spec, 'tcp')).length === 0 && tls.length === 0)
      out.push(required(id, 'spec', 'http, tcp or tls must be provided in virtual service'));
    tls.forEach((route, i) => {
      const path = `spec.tls[${i}]`;
      if (!isRecord(route)) return;
      const matches = arrayOf(route.match);
      if (matches.length === 0) out.push(required(id, `${path}.match`, 'TLS route must have at least one match condition'));
      matches.forEach((match, k) => {
        const mpath = `${path}.match[${k}]`;
        if (!isRecord(match)) return out.push(required(id, mpath, 'TLS match may not be null'));
        if (arrayOf(match.sniHosts).length === 0)
          out.push(required(id, `${mpath}.sniHosts`, 'TLS match must have at least one SNI host: passthrough routing needs the SNI name'));
        const port = match.port;
        if (typeof port === 'number' && port !== 0 && !(Number.isInteger(port) && port >= 1 && port <= 65535))
          out.push(invalid(id, `${mpath}.port`, port, `port number ${port} must be in the range 1..65535`));
        return undefined;
      });
      if (arrayOf(route.route).length === 0) out.push(required(id, `${path}.route`, 'TLS route is required'));
      return undefined;
    });
    return out;
  },
);

/** Every entry of `route` or `match` in the http, tcp and tls routes, with its path. */
function forEachRouteEntry(obj: KubeObject, list: 'route' | 'match', visit: (entry: Json, path: string) => void): void {
  for (const kind of ['http', 'tcp', 'tls'] as const)
    arrayOf(field(obj.spec, kind)).forEach((route, i) =>
      arrayOf(field(route, list)).forEach((entry, k) => visit(entry, `spec.${kind}[${i}].${list}[${k}]`)),
    );
}

/** Every route destination in http, tcp and tls routes, with its path. */
export function forEachDestination(obj: KubeObject, visit: (destination: Json, path: string) => void): void {
  forEachRouteEntry(obj, 'route', (dest, path) => visit(field(dest, 'destination'), `${path}.destination`));
}

export const vsDestinationHost = defineRule(
  'vs-destination-host',
  'VirtualService',
  'Each route destination.host is a valid host name and not a wildcard (stricter than Istio, which accepts "*-x" and "*.x").',
  (id, obj) => {
    const out: Finding[] = [];
    forEachDestination(obj, (dest, dpath) => {
      if (dest === undefined || dest === null) return out.push(required(id, dpath, 'destination is required'));
      const path = `${dpath}.host`;
      const host = field(dest, 'host');
      if (typeof host !== 'string') return out.push(host === undefined ? required(id, path, 'a destination names a Service host') : wrongType(id, path, host, 'a string'));
      if (host === '*') return out.push(invalid(id, path, host, 'invalid destination host *'));
      const err = validateWildcardDomain(host);
      if (err) return out.push(invalid(id, path, host, err));
      if (host.includes('*')) return out.push(invalid(id, path, host, 'a destination names one Service, not a wildcard'));
      return undefined;
    });
    return out;
  },
);

export const vsDestinationPort = defineRule(
  'vs-destination-port',
  'VirtualService',
  'destination.port.number, when a port is given, is in 1..65535.',
  (id, obj) => {
    const out: Finding[] = [];
    forEachDestination(obj, (dest, dpath) => {
      const port = field(dest, 'port');
      if (port === undefined || port === null) return;
      const path = `${dpath}.port.number`;
      const number = field(port, 'number') ?? 0;
      if (typeof number !== 'number') return void out.push(wrongType(id, path, number, 'an integer'));
      if (!Number.isInteger(number) || number < 1 || number > 65535)
        out.push(invalid(id, path, number, `port number ${number} must be in the range 1..65535`));
    });
    return out;
  },
);

/** Istio's validateGatewayNames for one entry, as reasons; warnings are flagged. */
function gatewayNameProblems(name: string): { why: string; warning?: boolean }[] {
  const slash = name.indexOf('/');
  if (slash < 0) {
    const out: { why: string; warning?: boolean }[] = [];
    if (name.includes('.')) {
      const parts = name.split('.');
      out.push({
        why: `using legacy gatewayName format ${q(name)}; prefer the <namespace>/<name> format: ${q(`${parts[1]}/${parts[0]}`)}`,
        warning: true,
      });
    }
    const err = validateFQDN(name);
    if (err) out.push({ why: err });
    return out;
  }
  const ns = name.slice(0, slash);
  const gw = name.slice(slash + 1);
  const out: { why: string }[] = [];
  if (ns === '' || gw === '') out.push({ why: 'config namespace and gateway name cannot be empty' });
  if (!isDNS1123Label(ns)) out.push({ why: `invalid value for namespace: ${q(ns)}` });
  if (!isDNS1123Label(gw)) out.push({ why: `invalid value for gateway name: ${q(gw)}` });
  return out;
}

/** spec.gateways and every match[].gateways list, with their paths. */
export function forEachGatewayRef(obj: KubeObject, visit: (name: string, path: string) => void): void {
  const visitList = (list: Json, path: string) =>
    arrayOf(list).forEach((g, i) => {
      const s = stringOf(g);
      if (s !== undefined) visit(s, `${path}[${i}]`);
    });
  visitList(field(obj.spec, 'gateways'), 'spec.gateways');
  forEachRouteEntry(obj, 'match', (m, path) => visitList(field(m, 'gateways'), `${path}.gateways`));
}

export const vsGatewayRef = defineRule(
  'vs-gateway-ref',
  'VirtualService',
  'Gateway references are "mesh", "name" or "namespace/name" with DNS-1123 labels.',
  (id, obj) => {
    const out: Finding[] = [];
    forEachGatewayRef(obj, (name, path) => {
      if (name === MESH) return;
      for (const p of gatewayNameProblems(name))
        out.push(invalid(id, path, name, p.why, p.warning ? { severity: 'warning' } : {}));
    });
    return out;
  },
);

export const virtualServiceRules: Rule[] = [
  vsHost,
  vsDuplicateHost,
  vsSniHost,
  vsSniCovered,
  vsRoutes,
  vsDestinationHost,
  vsDestinationPort,
  vsGatewayRef,
];
