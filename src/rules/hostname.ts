/**
 * Istio's hostname grammar, reproduced function by function from istio.io/istio
 * (pkg/config/validation/agent, pkg/config/labels, pkg/config/host). Each function returns
 * Istio's own error text, or undefined when Istio accepts the value, so that our messages can
 * quote the words users will also meet in istiod's webhook and in `istioctl analyze`.
 * The differential tests in test/oracle compare these verdicts with Istio's compiled code.
 */
import { isIPv4, isIPv6 } from 'node:net';

const LABEL_MAX = 63;
const NAME_MAX = 255;
const DNS1123_LABEL = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const WILDCARD_LABEL = /^(?:\*|(?:\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;

/** Go's %q for the strings we meet: JSON quoting agrees with it for printable ASCII. */
export const q = (s: string): string => JSON.stringify(s);

/** Go measures strings in bytes; so must we, or non-ASCII names slip past the 255 limit. */
const byteLength = (s: string): number => (s.length > NAME_MAX / 3 ? Buffer.byteLength(s, 'utf8') : s.length);

// The label patterns accept ASCII only, so a matching label's length is its byte length.
export function isDNS1123Label(s: string): boolean {
  return s.length <= LABEL_MAX && DNS1123_LABEL.test(s);
}

/** `*`, `*label`, `*-label` or a plain label: the only forms Istio allows in a first label. */
export function isWildcardDNS1123Label(s: string): boolean {
  return s.length <= LABEL_MAX && WILDCARD_LABEL.test(s);
}

/** Go's strconv.Atoi succeeds: optional sign, digits, and the value fits in 64 bits. */
function atoiSucceeds(s: string): boolean {
  if (!/^[+-]?[0-9]+$/.test(s)) return false;
  const v = BigInt(s);
  return v >= -(2n ** 63n) && v < 2n ** 63n;
}

/** netip.ParseAddr: dotted-quad IPv4 (no leading zeros), IPv6, IPv6 with a non-empty zone. */
export function isIPAddress(s: string): boolean {
  if (isIPv4(s)) return true;
  const zone = s.indexOf('%');
  if (zone < 0) return isIPv6(s);
  return zone < s.length - 1 && isIPv6(s.slice(0, zone)) && s.slice(0, zone).includes(':');
}

export function checkDNS1123Preconditions(name: string): string | undefined {
  if (byteLength(name) > NAME_MAX) return `domain name ${q(name)} too long (max ${NAME_MAX})`;
  if (name.length === 0) return 'empty domain name not allowed';
  return undefined;
}

export function validateDNS1123Labels(domain: string): string | undefined {
  const parts = domain.split('.');
  const tld = parts[parts.length - 1] ?? '';
  if (atoiSucceeds(tld)) return `domain name ${q(domain)} invalid (top level domain ${q(tld)} cannot be all-numeric)`;
  for (let i = 0; i < parts.length; i++) {
    const label = parts[i] ?? '';
    // A trailing dot (an empty last label) makes an absolute name: allowed.
    if (i === parts.length - 1 && label === '') return undefined;
    if (!isDNS1123Label(label)) return `domain name ${q(domain)} invalid (label ${q(label)} invalid)`;
  }
  return undefined;
}

/** ValidateFQDN: length, then every label. A single label passes. */
export function validateFQDN(fqdn: string): string | undefined {
  return checkDNS1123Preconditions(fqdn) ?? validateDNS1123Labels(fqdn);
}

/** ValidateWildcardDomain: a wildcard is possible in the first label only. */
export function validateWildcardDomain(domain: string): string | undefined {
  const pre = checkDNS1123Preconditions(domain);
  if (pre) return pre;
  const dot = domain.indexOf('.');
  const first = dot < 0 ? domain : domain.slice(0, dot);
  if (!isWildcardDNS1123Label(first)) return `domain name ${q(domain)} invalid (label ${q(first)} invalid)`;
  // Istio quotes only the remainder here, not the whole host: keep its words.
  return dot < 0 ? undefined : validateDNS1123Labels(domain.slice(dot + 1));
}

/** ValidatePartialWildCard: `*` must be the whole host or a whole leftmost label. */
export function validatePartialWildcard(host: string): string | undefined {
  if (host.includes('*') && host.length !== 1 && !host.startsWith('*.')) return `partial wildcard ${q(host)} not allowed`;
  return undefined;
}

const OUTBOUND_FORMAT = 'outbound_.<PORT>_._.<HOSTNAME>';

/** The auto-passthrough SNI form `outbound_.<port>_._.<host>` is allowed for gateway-bound sni hosts. */
export function validateWildcardDomainForVirtualServiceBoundToGateway(sni: boolean, domain: string): string | undefined {
  const pre = checkDNS1123Preconditions(domain);
  if (pre) return pre;
  if (sni && domain.startsWith('outbound_')) {
    const parts = domain.split('_');
    if (parts.length < 4) return `domain name ${domain} invalid, should follow '${OUTBOUND_FORMAT}' format`;
    const direction = parts[0] ?? '';
    const port = trimDots(parts[1] ?? '');
    const hostname = trimDots(parts[3] ?? '');
    if (direction !== 'outbound') return `domain name ${q(domain)} invalid (label ${q(direction)} invalid)`;
    if (!/[0-9]/.test(port))
      return `domain name ${q(domain)} invalid (label ${q(port)} invalid). should follow ${OUTBOUND_FORMAT} format`;
    if (!/[a-zA-Z]/.test(hostname))
      return `domain name ${q(domain)} invalid (label ${q(hostname)} invalid). should follow ${OUTBOUND_FORMAT} format`;
    return undefined;
  }
  return validateWildcardDomain(domain);
}

const trimDots = (s: string): string => s.replace(/^\.+|\.+$/g, '');

/** The reasons Istio gives for a Gateway server host's dnsName part (several may apply). */
export function gatewayHostnamePartErrors(hostname: string): string[] {
  const errs: string[] = [];
  if (hostname !== '*' && !hostname.includes('.')) errs.push('short names (non FQDN) are not allowed');
  const err = validateWildcardDomain(hostname);
  if (err && !isIPAddress(hostname)) errs.push(err);
  const partial = validatePartialWildcard(hostname);
  if (partial) errs.push(partial);
  return errs;
}

/** A Gateway host split as Istio splits it: on the first `/`. */
export function splitNamespaceHost(host: string): { namespace?: string; dnsName: string } {
  const slash = host.indexOf('/');
  return slash < 0 ? { dnsName: host } : { namespace: host.slice(0, slash), dnsName: host.slice(slash + 1) };
}

/** ValidateNamespaceSlashWildcardHostname(host, isGateway=true) for user-written Gateways. */
export function gatewayHostErrors(host: string): string[] {
  const { namespace, dnsName } = splitNamespaceHost(host);
  if (namespace === undefined) return gatewayHostnamePartErrors(dnsName);
  const errs: string[] = [];
  if (namespace.length === 0 || dnsName.length === 0) errs.push('config namespace and dnsName in host entry cannot be empty');
  if (namespace !== '*' && namespace !== '.' && !isDNS1123Label(namespace))
    errs.push(`invalid namespace value ${q(namespace)} in gateway`);
  errs.push(...gatewayHostnamePartErrors(dnsName));
  return errs;
}

/** host.Name.IsWildCarded */
export const isWildcarded = (h: string): boolean => h.startsWith('*');

/** host.Name.SubsetOf: is every name `n` matches also matched by `o`? */
export function hostSubsetOf(n: string, o: string): boolean {
  const nw = isWildcarded(n);
  const ow = isWildcarded(o);
  if (nw) return ow && n.length >= o.length && n.slice(1).endsWith(o.slice(1));
  if (ow) return n.endsWith(o.slice(1));
  return n === o;
}

/** host.Name.Matches: do the two names share at least one concrete host? */
export function hostMatches(n: string, o: string): boolean {
  const nw = isWildcarded(n);
  const ow = isWildcarded(o);
  if (nw) {
    if (ow) return n.length < o.length ? o.slice(1).endsWith(n.slice(1)) : n.slice(1).endsWith(o.slice(1));
    return o.endsWith(n.slice(1));
  }
  if (ow) return n.endsWith(o.slice(1));
  return n === o;
}

/**
 * The full-leftmost-wildcard form of a partial wildcard, when there is an obvious one:
 * `*-redis.example.com` and `*redis.example.com` both become `*.redis.example.com`.
 */
export function leftmostWildcardFix(host: string): string | undefined {
  const m = /^\*-?([^*]*)$/.exec(host);
  if (!m || host.startsWith('*.')) return undefined;
  const rest = m[1] ?? '';
  return rest.includes('.') ? `*.${rest}` : undefined;
}

/**
 * Hosts indexed by their wildcard suffixes, so that coverage and overlap questions cost the
 * length of a name instead of the number of hosts: a 3 MiB object may hold 100,000 hosts, and
 * pairwise comparison would then take minutes.
 */
export class HostIndex {
  private readonly exact = new Map<string, number[]>();
  /** "*X" hosts, keyed by X. */
  private readonly wildcards = new Map<string, number[]>();
  /** The lengths of those X: only suffixes of these lengths can be keys. */
  private readonly wildcardLengths: number[] = [];

  constructor(hosts: readonly string[]) {
    hosts.forEach((h, i) => {
      const map = isWildcarded(h) ? this.wildcards : this.exact;
      const key = isWildcarded(h) ? h.slice(1) : h;
      if (isWildcarded(h) && !this.wildcardLengths.includes(key.length)) this.wildcardLengths.push(key.length);
      const list = map.get(key);
      if (list) list.push(i);
      else map.set(key, [i]);
    });
  }

  /** Indices of wildcard hosts "*X" where X is a suffix of `name` (X may be empty). */
  private wildcardsEndingOf(name: string, visit: (i: number, suffixLength: number) => void): void {
    for (const n of this.wildcardLengths) {
      if (n > name.length) continue;
      for (const i of this.wildcards.get(name.slice(name.length - n)) ?? []) visit(i, n);
    }
  }

  /** Is `sni` a subset of some host (host.Name.SubsetOf)? */
  covers(sni: string): boolean {
    let found = false;
    if (isWildcarded(sni)) this.wildcardsEndingOf(sni.slice(1), () => (found = true));
    else {
      if (this.exact.has(sni)) return true;
      this.wildcardsEndingOf(sni, () => (found = true));
    }
    return found;
  }

  /** Pairs (i < j) whose hosts match each other (host.Name.Matches), in Istio's order, at most `max`. */
  overlappingPairs(max: number): [number, number][] {
    const pairs = new Set<string>();
    const out: [number, number][] = [];
    const add = (a: number, b: number) => {
      if (a === b || out.length >= max) return;
      const [i, j] = a < b ? [a, b] : [b, a];
      const key = `${i},${j}`;
      if (pairs.has(key)) return;
      pairs.add(key);
      out.push([i, j]);
    };
    for (const [name, idx] of this.exact) {
      for (const a of idx) for (const b of idx) add(a, b);
      this.wildcardsEndingOf(name, (w) => idx.forEach((a) => add(a, w)));
    }
    // Two wildcards overlap when one's suffix ends with the other's.
    for (const [body, idx] of this.wildcards) this.wildcardsEndingOf(body, (w) => idx.forEach((a) => add(a, w)));
    return out.sort((p, q) => p[0] - q[0] || p[1] - q[1]);
  }
}
