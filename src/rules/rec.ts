/**
 * RedisEnterpriseCluster rules. With `ingressOrRouteSpec.method: istio` the operator's Gateway
 * serves `"*" + dbFqdnSuffix`, and Istio accepts only a full leftmost wildcard there, so the
 * suffix must start with a dot. NGINX and HAProxy accept partial wildcards: other methods keep
 * hyphen suffixes. The legacy v1alpha1 `spec.activeActive` follows the same rules.
 */
import { forbidden, invalid, required, wrongType } from './finding.ts';
import {
  gatewayHostErrors,
  hostSubsetOf,
  isIPAddress,
  validateFQDN,
} from './hostname.ts';
import { field, isRecord, stringOf } from './object.ts';
import { defineRule, type Rule } from './rule.ts';
import type { Finding, KubeObject } from './types.ts';

/** The two places a REC names its Istio hosts, with their field names. */
interface IngressFields {
  base: string;
  api: string;
  suffix: string;
}

const INGRESS_OR_ROUTE: IngressFields = { base: 'spec.ingressOrRouteSpec', api: 'apiFqdnUrl', suffix: 'dbFqdnSuffix' };
const ACTIVE_ACTIVE: IngressFields = { base: 'spec.activeActive', api: 'apiIngressUrl', suffix: 'dbIngressSuffix' };

function istioBlocks(obj: KubeObject): { fields: IngressFields; block: Record<string, unknown> }[] {
  const out: { fields: IngressFields; block: Record<string, unknown> }[] = [];
  for (const fields of [INGRESS_OR_ROUTE, ACTIVE_ACTIVE]) {
    const block = field(obj.spec, fields.base.slice('spec.'.length));
    if (isRecord(block) && block.method === 'istio') out.push({ fields, block });
  }
  return out;
}

const EXAMPLE_SUFFIX = '.redis.example.com';

/** The dot form of a suffix that lacks the dot, if that form is a valid suffix. */
function dotFix(suffix: string): string | undefined {
  const candidate = suffix.startsWith('-') ? `.${suffix.slice(1)}` : `.${suffix}`;
  return suffixProblem(candidate) === undefined ? candidate : undefined;
}

/** Why a suffix that starts with a dot is still unusable, in Istio's words where it has some. */
function suffixProblem(suffix: string): string | undefined {
  const domain = suffix.slice(1);
  if (domain === '' || domain === '.') return 'a dot must be followed by a domain';
  if (domain.includes('*')) return 'the suffix may not contain a wildcard: the Gateway host adds the "*" itself';
  const fqdn = validateFQDN(domain);
  if (fqdn) return fqdn;
  const gw = gatewayHostErrors(`*${suffix}`);
  return gw.length > 0 ? `the Gateway host ${JSON.stringify(`*${suffix}`)} is invalid: ${gw.join(', ')}` : undefined;
}

const SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//;

function suffixFindings(rule: string, path: string, value: unknown): Finding[] {
  if (value === undefined || value === null)
    return [required(rule, path, `with method istio, database hosts are "<db>" + this suffix; set it, e.g. ${JSON.stringify(EXAMPLE_SUFFIX)}`)];
  if (typeof value !== 'string') return [wrongType(rule, path, value, 'a string')];
  const suffix = value;
  if (suffix === '') return [invalid(rule, path, suffix, 'empty: database hosts would be the bare database name', { fix: EXAMPLE_SUFFIX })];
  if (SCHEME.test(suffix) || suffix.includes('/') || suffix.includes(':'))
    return [invalid(rule, path, suffix, 'must be a DNS suffix, without scheme, port or path')];
  if (!suffix.startsWith('.')) {
    const why =
      `database hosts become ${JSON.stringify(`<db>${suffix}`)}, and Istio rejects the wildcard ` +
      `${JSON.stringify(`*${suffix}`)} as a partial wildcard`;
    return [invalid(rule, path, suffix, why, { fix: dotFix(suffix) })];
  }
  const problem = suffixProblem(suffix);
  return problem ? [invalid(rule, path, suffix, problem)] : [];
}

/** A plain host name from a URL-ish value: scheme, credentials, port and path removed. */
function hostFromUrlish(value: string): string | undefined {
  try {
    const url = new URL(SCHEME.test(value) ? value : `https://${value}`);
    return url.hostname && !url.hostname.startsWith('[') ? url.hostname : undefined;
  } catch {
    return undefined;
  }
}

function apiFindings(rule: string, path: string, value: unknown): Finding[] {
  if (value === undefined || value === null)
    return [required(rule, path, 'the REST API host name is required, e.g. "api.redis.example.com"')];
  if (typeof value !== 'string') return [wrongType(rule, path, value, 'a string')];
  const api = value;
  const plain = (why: string) => invalid(rule, path, api, why, { fix: hostFromUrlish(api) });
  if (SCHEME.test(api)) return [plain('must be a plain host name, without a scheme: the Gateway routes on the TLS SNI name')];
  if (api.includes('/')) return [plain('must be a plain host name, without a path')];
  if (isIPAddress(api)) return [invalid(rule, path, api, 'must be a host name: SNI routing cannot match an IP address')];
  if (api.includes(':')) return [plain('must be a plain host name, without a port: clients reach the Gateway on 443')];
  if (api.includes('*')) return [invalid(rule, path, api, 'must be one exact host name, not a wildcard')];
  const fqdn = validateFQDN(api);
  if (fqdn) return [invalid(rule, path, api, fqdn)];
  if (!api.replace(/\.$/, '').includes('.'))
    return [invalid(rule, path, api, 'short names (non FQDN) are not allowed in an Istio Gateway; use a fully qualified name')];
  return [];
}

const normalize = (h: string) => h.toLowerCase().replace(/\.$/, '');

export const recDbSuffix = defineRule(
  'rec-db-suffix',
  'RedisEnterpriseCluster',
  'With method istio, the database suffix (dbFqdnSuffix, dbIngressSuffix) is a dot followed by a valid domain.',
  (id, obj) =>
    istioBlocks(obj).flatMap(({ fields, block }) => suffixFindings(id, `${fields.base}.${fields.suffix}`, block[fields.suffix])),
);

export const recApiHost = defineRule(
  'rec-api-host',
  'RedisEnterpriseCluster',
  'With method istio, the API host (apiFqdnUrl, apiIngressUrl) is a plain FQDN: no scheme, port, path or wildcard.',
  (id, obj) => istioBlocks(obj).flatMap(({ fields, block }) => apiFindings(id, `${fields.base}.${fields.api}`, block[fields.api])),
);

export const recApiCovered = defineRule(
  'rec-api-covered',
  'RedisEnterpriseCluster',
  'Warns when the database wildcard "*" + suffix does not cover the API host: two Gateway hosts and DNS records are needed.',
  (id, obj) => {
    const out: Finding[] = [];
    for (const { fields, block } of istioBlocks(obj)) {
      const suffix = stringOf(block[fields.suffix]);
      const api = stringOf(block[fields.api]);
      if (suffix === undefined || api === undefined) continue;
      // Only judge coverage between two values that are themselves valid.
      if (suffixFindings(id, '', suffix).length > 0 || apiFindings(id, '', api).length > 0) continue;
      const wildcard = `*${suffix}`;
      if (hostSubsetOf(normalize(api), normalize(wildcard))) continue;
      const why = `not covered by the database wildcard ${JSON.stringify(wildcard)}: the Gateway needs a second host and DNS a second record`;
      out.push(invalid(id, `${fields.base}.${fields.api}`, api, why, { severity: 'warning' }));
    }
    return out;
  },
);

export const recIngressExclusive = defineRule(
  'rec-ingress-exclusive',
  'RedisEnterpriseCluster',
  'Warns when both ingressOrRouteSpec and the deprecated activeActive are set: the operator accepts only one.',
  (id, obj) =>
    isRecord(field(obj.spec, 'ingressOrRouteSpec')) && isRecord(field(obj.spec, 'activeActive'))
      ? [forbidden(id, 'spec.activeActive', 'at most one of ingressOrRouteSpec and activeActive may be set; activeActive is deprecated', 'warning')]
      : [],
);

export const recRules: Rule[] = [recDbSuffix, recApiHost, recApiCovered, recIngressExclusive];
