import t from 'tap';
import {
  gatewayHostErrors,
  hostMatches,
  hostSubsetOf,
  isIPAddress,
  leftmostWildcardFix,
  validateFQDN,
  validateWildcardDomain,
  validateWildcardDomainForVirtualServiceBoundToGateway,
} from '../../../src/rules/hostname.ts';

const l63 = 'a'.repeat(63);
const l64 = 'a'.repeat(64);
/** A name of exactly n characters made of 63-character labels. */
function nameOfLength(n: number): string {
  const labels: string[] = [];
  let left = n;
  while (left > 0) {
    const take = Math.min(63, left - (labels.length ? 1 : 0));
    if (labels.length) left -= 1;
    labels.push('b'.repeat(take));
    left -= take;
  }
  return labels.join('.');
}

t.test('validateWildcardDomain', async (t) => {
  const cases: [string, string | undefined][] = [
    ['*.redis.example.com', undefined],
    ['*-redis.example.com', undefined], // Istio's label grammar allows "*-label"
    ['*redis.example.com', undefined],
    ['*', undefined],
    ['db1.redis.example.com', undefined],
    ['Db1.Redis.Example.COM', undefined], // upper case is accepted
    ['redis.example.com.', undefined], // trailing dot
    ['reviews', undefined], // a single label passes this function
    [`${l63}.example.com`, undefined],
    [`${l64}.example.com`, `domain name "${l64}.example.com" invalid (label "${l64}" invalid)`],
    [`x.${l64}.com`, `domain name "${l64}.com" invalid (label "${l64}" invalid)`],
    ['foo.*.com', 'domain name "*.com" invalid (label "*" invalid)'],
    ['foo*.bar.com', 'domain name "foo*.bar.com" invalid (label "foo*" invalid)'],
    ['1.1.1.1', 'domain name "1.1.1" invalid (top level domain "1" cannot be all-numeric)'],
    ['foo..com', 'domain name ".com" invalid (label "" invalid)'],
    ['', 'empty domain name not allowed'],
    ['ns/host.com', 'domain name "ns/host.com" invalid (label "ns/host" invalid)'],
    ['-a.com', 'domain name "-a.com" invalid (label "-a" invalid)'],
    ['a_b.com', 'domain name "a_b.com" invalid (label "a_b" invalid)'],
    ['*-', 'domain name "*-" invalid (label "*-" invalid)'],
    ['**.com', 'domain name "**.com" invalid (label "**" invalid)'],
  ];
  for (const [host, want] of cases) t.equal(validateWildcardDomain(host), want, host);
});

t.test('length limits count 255, not 253', async (t) => {
  const n255 = nameOfLength(255);
  const n256 = nameOfLength(256);
  t.equal(n255.length, 255);
  t.equal(n256.length, 256);
  t.equal(validateFQDN(n255), undefined);
  t.equal(validateFQDN(n256), `domain name "${n256}" too long (max 255)`);
  t.equal(validateWildcardDomain(n256), `domain name "${n256}" too long (max 255)`);
});

t.test('all-numeric top level domain follows Go strconv.Atoi', async (t) => {
  t.match(validateFQDN('a.123'), /cannot be all-numeric/);
  t.match(validateFQDN('123'), /cannot be all-numeric/);
  t.equal(validateWildcardDomain('123'), undefined, 'the first label is not a TLD for the wildcard check');
  // 20 digits overflow int64: Atoi fails, and the label itself is a valid DNS label.
  t.equal(validateFQDN('a.99999999999999999999'), undefined);
});

t.test('IP addresses as netip.ParseAddr sees them', async (t) => {
  const cases: [string, boolean][] = [
    ['1.1.1.1', true],
    ['255.255.255.255', true],
    ['01.1.1.1', false],
    ['256.1.1.1', false],
    ['::1', true],
    ['2001:db8::1', true],
    ['fe80::1%eth0', true],
    ['fe80::1%', false],
    ['::ffff:1.2.3.4', true],
    ['1.2.3.4%eth0', false],
    ['example.com', false],
  ];
  for (const [ip, want] of cases) t.equal(isIPAddress(ip), want, ip);
});

t.test('gateway host grammar', async (t) => {
  const cases: [string, string[]][] = [
    ['*', []],
    ['*/*', []],
    ['./*', []],
    ['ns/*', []],
    ['*.example.com', []],
    ['prod/*.example.com', []],
    ['./api.redis.example.com', []],
    ['*/api.redis.example.com', []],
    ['Prod/Foo.Example.com', []],
    ['1.1.1.1', []],
    ['foo.', []],
    ['*-redis.example.com', ['partial wildcard "*-redis.example.com" not allowed']],
    ['*redis.example.com', ['partial wildcard "*redis.example.com" not allowed']],
    ['ns/*-redis.example.com', ['partial wildcard "*-redis.example.com" not allowed']],
    [
      'foo.*.bar.com',
      ['domain name "*.bar.com" invalid (label "*" invalid)', 'partial wildcard "foo.*.bar.com" not allowed'],
    ],
    ['foo', ['short names (non FQDN) are not allowed']],
    ['::1', ['short names (non FQDN) are not allowed']],
    ['~/foo.bar.com', ['invalid namespace value "~" in gateway']],
    ['Bad_NS/foo.bar.com', ['invalid namespace value "Bad_NS" in gateway']],
    [
      '/foo.com',
      ['config namespace and dnsName in host entry cannot be empty', 'invalid namespace value "" in gateway'],
    ],
    [
      'ns/',
      [
        'config namespace and dnsName in host entry cannot be empty',
        'short names (non FQDN) are not allowed',
        'empty domain name not allowed',
      ],
    ],
    [`${l64}.example.com`, [`domain name "${l64}.example.com" invalid (label "${l64}" invalid)`]],
  ];
  for (const [host, want] of cases) t.same(gatewayHostErrors(host), want, host);
});

t.test('auto-passthrough SNI names', async (t) => {
  t.equal(validateWildcardDomainForVirtualServiceBoundToGateway(true, 'outbound_.80_._.e2e.foobar.mesh'), undefined);
  t.match(validateWildcardDomainForVirtualServiceBoundToGateway(true, 'outbound_.80_.foo'), /should follow/);
  t.match(validateWildcardDomainForVirtualServiceBoundToGateway(true, 'outbound_.x_._.foo.com'), /label "x" invalid\). should follow/);
  t.match(validateWildcardDomainForVirtualServiceBoundToGateway(true, 'outbound_.80_._.123'), /label "123" invalid/);
  t.match(validateWildcardDomainForVirtualServiceBoundToGateway(false, 'outbound_.80_._.e2e.foobar.mesh'), /invalid/);
});

t.test('subset and match semantics', async (t) => {
  const subset: [string, string, boolean][] = [
    ['a.foo.com', '*.foo.com', true],
    ['a.b.foo.com', '*.foo.com', true],
    ['foo.com', '*.foo.com', false],
    ['foo.com', '*foo.com', true],
    ['db1-redis.example.com', '*.redis.example.com', false],
    ['anything', '*', true],
    ['*.a.foo.com', '*.foo.com', true],
    ['*.foo.com', 'a.foo.com', false],
    ['*.foo.com', '*.a.foo.com', false],
    ['a.foo.com', 'a.foo.com', true],
    ['A.foo.com', 'a.foo.com', false],
  ];
  for (const [n, o, want] of subset) t.equal(hostSubsetOf(n, o), want, `${n} ⊆ ${o}`);
  t.equal(hostMatches('*.foo.bar', '*.bar'), true);
  t.equal(hostMatches('foo.com', '*.foo.com'), false);
  t.equal(hostMatches('a.foo.com', '*.foo.com'), true);
  t.equal(hostMatches('*.foo.com', 'a.foo.com'), true);
});

t.test('leftmost wildcard fixes', async (t) => {
  t.equal(leftmostWildcardFix('*-redis.example.com'), '*.redis.example.com');
  t.equal(leftmostWildcardFix('*redis.example.com'), '*.redis.example.com');
  t.equal(leftmostWildcardFix('*.redis.example.com'), undefined);
  t.equal(leftmostWildcardFix('foo.*.com'), undefined);
  t.equal(leftmostWildcardFix('*-local'), undefined);
});
