import t from 'tap';
import type { KubeObject } from '../../../src/rules/types.ts';
import { defaultContext } from '../../../src/rules/context.ts';
import { evaluate } from '../../../src/rules/engine.ts';
import { rec } from '../../fixtures/objects.ts';

const judge = (obj: KubeObject) => evaluate('RedisEnterpriseCluster', obj, defaultContext('redis'));
const istio = (dbFqdnSuffix: unknown, apiFqdnUrl: unknown = 'api.redis.example.com') =>
  rec({ method: 'istio', ...(apiFqdnUrl === null ? {} : { apiFqdnUrl }), dbFqdnSuffix });

t.test('dbFqdnSuffix with method istio', async (t) => {
  const cases: { suffix: unknown; message?: string; fix?: string }[] = [
    { suffix: '.redis.example.com' },
    { suffix: '.Redis.Example.com' },
    { suffix: '.redis.example.com.' },
    { suffix: '.db-rec-ns.example.com' },
    {
      suffix: '-redis.example.com',
      message:
        'spec.ingressOrRouteSpec.dbFqdnSuffix: Invalid value: "-redis.example.com": database hosts become "<db>-redis.example.com", and Istio rejects the wildcard "*-redis.example.com" as a partial wildcard; use ".redis.example.com"',
      fix: '.redis.example.com',
    },
    {
      suffix: 'redis.example.com',
      message:
        'spec.ingressOrRouteSpec.dbFqdnSuffix: Invalid value: "redis.example.com": database hosts become "<db>redis.example.com", and Istio rejects the wildcard "*redis.example.com" as a partial wildcard; use ".redis.example.com"',
      fix: '.redis.example.com',
    },
    {
      suffix: '-db-rec-ns.example.com',
      message:
        'spec.ingressOrRouteSpec.dbFqdnSuffix: Invalid value: "-db-rec-ns.example.com": database hosts become "<db>-db-rec-ns.example.com", and Istio rejects the wildcard "*-db-rec-ns.example.com" as a partial wildcard; use ".db-rec-ns.example.com"',
      fix: '.db-rec-ns.example.com',
    },
    { suffix: '-x', message: 'spec.ingressOrRouteSpec.dbFqdnSuffix: Invalid value: "-x": database hosts become "<db>-x", and Istio rejects the wildcard "*-x" as a partial wildcard; use ".x"', fix: '.x' },
    { suffix: '-', message: 'spec.ingressOrRouteSpec.dbFqdnSuffix: Invalid value: "-": database hosts become "<db>-", and Istio rejects the wildcard "*-" as a partial wildcard' },
    { suffix: '.', message: 'spec.ingressOrRouteSpec.dbFqdnSuffix: Invalid value: ".": a dot must be followed by a domain' },
    { suffix: '', message: 'spec.ingressOrRouteSpec.dbFqdnSuffix: Invalid value: "": empty: database hosts would be the bare database name; use ".redis.example.com"', fix: '.redis.example.com' },
    { suffix: '.redis..com', message: 'spec.ingressOrRouteSpec.dbFqdnSuffix: Invalid value: ".redis..com": domain name "redis..com" invalid (label "" invalid)' },
    { suffix: '.*.example.com', message: 'spec.ingressOrRouteSpec.dbFqdnSuffix: Invalid value: ".*.example.com": the suffix may not contain a wildcard: the Gateway host adds the "*" itself' },
    { suffix: '.redis.123', message: 'spec.ingressOrRouteSpec.dbFqdnSuffix: Invalid value: ".redis.123": domain name "redis.123" invalid (top level domain "123" cannot be all-numeric)' },
    { suffix: `.${'a'.repeat(64)}.com`, message: `spec.ingressOrRouteSpec.dbFqdnSuffix: Invalid value: ".${'a'.repeat(64)}.com": domain name "${'a'.repeat(64)}.com" invalid (label "${'a'.repeat(64)}" invalid)` },
    { suffix: 'https://redis.example.com', message: 'spec.ingressOrRouteSpec.dbFqdnSuffix: Invalid value: "https://redis.example.com": must be a DNS suffix, without scheme, port or path' },
    { suffix: 42, message: 'spec.ingressOrRouteSpec.dbFqdnSuffix: Invalid value: 42: must be a string' },
    { suffix: undefined, message: 'spec.ingressOrRouteSpec.dbFqdnSuffix: Required value: with method istio, database hosts are "<db>" + this suffix; set it, e.g. ".redis.example.com"' },
  ];
  for (const c of cases) {
    const found = judge(istio(c.suffix)).filter((f) => f.rule === 'rec-db-suffix');
    if (!c.message) {
      t.same(found, [], `${String(c.suffix)} is fine`);
      continue;
    }
    t.equal(found.length, 1, `${String(c.suffix)}: one finding`);
    t.equal(found[0]?.message, c.message);
    t.equal(found[0]?.severity, 'error');
    t.equal(found[0]?.fix, c.fix);
    t.equal(found[0]?.path, 'spec.ingressOrRouteSpec.dbFqdnSuffix');
  }
});

t.test('the suffix length limit: "*" + suffix up to 255', async (t) => {
  const label = 'a'.repeat(63);
  const domain = [label, label, label, 'b'.repeat(61)].join('.'); // 253 characters
  t.equal(domain.length, 253);
  t.same(judge(istio(`.${domain}`)).filter((f) => f.rule === 'rec-db-suffix'), [], '"*." + 253 = 255 is fine');
  const longer = `${domain}c`;
  t.match(judge(istio(`.${longer}`)).find((f) => f.rule === 'rec-db-suffix')?.message, /too long \(max 255\)/);
});

t.test('other methods keep hyphen suffixes', async (t) => {
  for (const method of ['ingress', 'openShiftRoute']) {
    t.same(judge(rec({ method, apiFqdnUrl: 'api-rec.example.com', dbFqdnSuffix: '-db-rec.example.com' })), [], method);
  }
  t.same(judge(rec(null)), [], 'a REC without ingressOrRouteSpec');
  t.same(judge({ apiVersion: 'app.redislabs.com/v1', kind: 'RedisEnterpriseCluster', metadata: { name: 'x' } }), [], 'no spec at all');
  t.same(judge({ spec: 'nonsense' }), [], 'a spec of the wrong type');
});

t.test('apiFqdnUrl', async (t) => {
  const cases: { api: unknown; message?: string; fix?: string }[] = [
    { api: 'api.redis.example.com' },
    { api: 'API.redis.example.com.' },
    { api: 'https://api.redis.example.com', message: 'must be a plain host name, without a scheme: the Gateway routes on the TLS SNI name', fix: 'api.redis.example.com' },
    { api: 'api.redis.example.com:9443', message: 'must be a plain host name, without a port: clients reach the Gateway on 443', fix: 'api.redis.example.com' },
    { api: 'api.redis.example.com/v1', message: 'must be a plain host name, without a path', fix: 'api.redis.example.com' },
    { api: '*.redis.example.com', message: 'must be one exact host name, not a wildcard' },
    { api: '10.0.0.1', message: 'must be a host name: SNI routing cannot match an IP address' },
    { api: 'api', message: 'short names (non FQDN) are not allowed in an Istio Gateway; use a fully qualified name' },
    { api: 'api_x.example.com', message: 'domain name "api_x.example.com" invalid (label "api_x" invalid)' },
    { api: null, message: 'the REST API host name is required, e.g. "api.redis.example.com"' },
  ];
  for (const c of cases) {
    const found = judge(istio('.redis.example.com', c.api)).filter((f) => f.rule === 'rec-api-host');
    if (!c.message) {
      t.same(found, [], `${String(c.api)} is fine`);
      continue;
    }
    t.equal(found.length, 1, String(c.api));
    t.match(found[0]?.message, `spec.ingressOrRouteSpec.apiFqdnUrl: `);
    t.match(found[0]?.message, c.message);
    t.equal(found[0]?.fix, c.fix);
  }
});

t.test('API host outside the database wildcard is a warning', async (t) => {
  const found = judge(istio('.db.redis.example.com', 'api.redis.example.com'));
  t.same(
    found.map((f) => [f.rule, f.severity, f.message]),
    [
      [
        'rec-api-covered',
        'warning',
        'spec.ingressOrRouteSpec.apiFqdnUrl: Invalid value: "api.redis.example.com": not covered by the database wildcard "*.db.redis.example.com": the Gateway needs a second host and DNS a second record',
      ],
    ],
  );
  t.same(judge(istio('.redis.example.com', 'API.Redis.Example.com.')), [], 'coverage ignores case and a trailing dot');
  t.same(judge(istio('-redis.example.com', 'api.other.com')).filter((f) => f.rule === 'rec-api-covered'), [], 'not judged while the suffix is invalid');
});

t.test('legacy v1alpha1 activeActive with method istio', async (t) => {
  const obj = rec(null, {
    apiVersion: 'app.redislabs.com/v1alpha1',
    extraSpec: { activeActive: { method: 'istio', apiIngressUrl: 'https://api.redis.example.com', dbIngressSuffix: '-redis.example.com' } },
  });
  const found = judge(obj);
  t.same(found.map((f) => [f.rule, f.path]), [
    ['rec-db-suffix', 'spec.activeActive.dbIngressSuffix'],
    ['rec-api-host', 'spec.activeActive.apiIngressUrl'],
  ]);
  t.same(judge(rec(null, { extraSpec: { activeActive: { method: 'ingress', apiIngressUrl: 'a.b.c', dbIngressSuffix: '-x.b.c' } } })), []);
});

t.test('both ingressOrRouteSpec and activeActive', async (t) => {
  const found = judge(rec(null, { extraSpec: { ingressOrRouteSpec: { method: 'ingress', apiFqdnUrl: 'a.b.c', dbFqdnSuffix: '-x.b.c' }, activeActive: { method: 'ingress', apiIngressUrl: 'a.b.c', dbIngressSuffix: '-x.b.c' } } }));
  t.same(found.map((f) => [f.rule, f.severity, f.message]), [
    ['rec-ingress-exclusive', 'warning', 'spec.activeActive: Forbidden: at most one of ingressOrRouteSpec and activeActive may be set; activeActive is deprecated'],
  ]);
});
