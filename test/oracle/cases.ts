/**
 * The differential corpus: hand-picked host forms and generated objects whose only variable
 * parts are hosts, sniHosts and gateway bindings, so that Istio's verdict depends on the hosts.
 */
import fc from 'fast-check';
import { gateway, virtualService } from '../fixtures/objects.ts';

export const SEED = 20261127;

const REDIS_SHAPES = [
  '*.redis.example.com',
  '*-redis.example.com',
  '*redis.example.com',
  'api.redis.example.com',
  'db1.redis.example.com',
  'db1-redis.example.com',
  '-db-rec-ns.example.com',
  '*-db-rec-ns.example.com',
  '*.db-rec-ns.example.com',
];
const l63 = 'a'.repeat(63);
const l64 = 'a'.repeat(64);
const len = (n: number) => {
  const parts: string[] = [];
  let left = n;
  while (left > 0) {
    const take = Math.min(63, left - (parts.length ? 1 : 0));
    left -= take + (parts.length ? 1 : 0);
    parts.push('c'.repeat(Math.max(take, 1)));
  }
  return parts.join('.');
};
export const HAND_HOSTS = [
  ...REDIS_SHAPES,
  '*',
  '*.',
  'foo',
  'foo.',
  'Foo.Example.COM',
  'redis.example.com.',
  'foo.123.',
  'db1.redis.123',
  '1.1.1.1',
  '10.0.0.1',
  '::1',
  '2001:db8::1',
  'fe80::1%eth0',
  '[::1]',
  `${l63}.example.com`,
  `${l64}.example.com`,
  `x.${l64}.com`,
  len(255),
  len(256),
  `*.${len(253)}`,
  'foo.*.com',
  'redis.*.example.com',
  'foo*.bar.com',
  '**.com',
  '*-.com',
  'a_b.example.com',
  'foo..com',
  '',
  'outbound_.443_._.db1.redis.example.com',
  'outbound_.1',
  'outbound_.x_._.1',
];
export const NAMESPACE_PREFIXES = ['', '*/', './', 'redis/', '~/', '/', 'Bad_NS/', 'Redis/'];

export function handGateways() {
  return HAND_HOSTS.flatMap((h) => NAMESPACE_PREFIXES.map((p) => gateway([`${p}${h}`])));
}

const BINDINGS: string[][] = [[], ['mesh'], ['istio-system/redis-gateway'], ['mesh', 'istio-system/redis-gateway']];

export function handVirtualServices() {
  const out = [];
  for (const h of HAND_HOSTS)
    for (const gateways of BINDINGS) {
      const sni = h.startsWith('*') ? `db1${h.slice(1)}` : h;
      out.push(virtualService([h], [{ sniHosts: [sni], host: 'db1', port: 12000 }], { gateways }));
      out.push(virtualService(['*.redis.example.com'], [{ sniHosts: [h], host: 'db1', port: 12000 }], { gateways }));
    }
  return out;
}

// Generators ---------------------------------------------------------------------------------

const plainLabel = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,6}[a-z0-9])?$/);
const oddLabel = fc.constantFrom('', '-a', 'a-', 'A', 'Db1', 'DB1', '123', '0', 'a_b', 'outbound_', 'x y');
const wildLabel = fc.constantFrom('*', '*x', 'x*', '*-', '*-x', '*x-y', 'x*y', '**');
const longLabel = fc.integer({ min: 60, max: 64 }).map((n) => 'l'.repeat(n));
// Mostly plain labels, so that about half of the objects are valid and half are not.
const label = fc.oneof({ weight: 40, arbitrary: plainLabel }, { weight: 2, arbitrary: oddLabel }, { weight: 1, arbitrary: wildLabel }, { weight: 1, arbitrary: longLabel });

const dnsName = fc
  .tuple(
    fc.array(label, { minLength: 2, maxLength: 4 }),
    fc.constantFrom('', '', '', '.'),
    fc.constantFrom('', '', '', '', '*.', '*.', '*-', '*'),
    fc.boolean(),
  )
  // Usually end in a letter, so that all-numeric top-level labels stay a minority.
  .map(([labels, dot, prefix, letter]) => `${prefix}${labels.join('.')}${letter ? 'x' : ''}${dot}`);
const longName = fc.integer({ min: 250, max: 260 }).chain((n) => fc.constantFrom(len(n), `*.${len(n - 2)}`, `${len(n - 1)}.`));
const ip = fc.oneof(fc.ipV4(), fc.ipV6());
export const hostArb = fc.oneof(
  { weight: 16, arbitrary: dnsName },
  { weight: 1, arbitrary: longName },
  { weight: 1, arbitrary: ip },
  { weight: 1, arbitrary: fc.constantFrom(...HAND_HOSTS) },
);

export const gatewayArb = fc
  .array(fc.tuple(fc.constantFrom(...NAMESPACE_PREFIXES, '', '', '', '', '', '', '', ''), hostArb), { minLength: 1, maxLength: 3 })
  .map((hosts) => gateway(hosts.map(([p, h]) => `${p}${h}`)));

/** An SNI name derived from a host: covered by it, or close to it, or unrelated. */
const sniFor = (hosts: string[]) =>
  fc.oneof(
    fc.constantFrom(...hosts).map((h) => (h.startsWith('*') ? `db1${h.slice(1)}` : h)),
    fc.constantFrom(...hosts).map((h) => (h.startsWith('*.') ? `db1-${h.slice(2)}` : `x${h}`)),
    hostArb,
  );

export const virtualServiceArb = fc
  .tuple(fc.array(hostArb, { minLength: 1, maxLength: 3 }), fc.constantFrom(...BINDINGS))
  .chain(([hosts, gateways]) =>
    fc
      .array(fc.array(sniFor(hosts), { minLength: 1, maxLength: 2 }), { minLength: 1, maxLength: 2 })
      .map((routes) => virtualService(hosts, routes.map((sniHosts) => ({ sniHosts, host: 'db1', port: 12000 })), { gateways })),
  );

export const objectArb = fc.oneof(gatewayArb, virtualServiceArb);
