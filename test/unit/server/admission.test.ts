import t from 'tap';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { defaultServeSettings, type ServeSettings } from '../../../src/config.ts';
import { RATCHET_NOTE } from '../../../src/rules/engine.ts';
import { startServer } from '../../../src/server/serve.ts';
import { gateway, rec, virtualService } from '../../fixtures/objects.ts';
import { admissionReview, get, post } from '../../helpers/review.ts';

async function server(t: { teardown(fn: () => unknown): void }, overrides: Partial<ServeSettings> = {}) {
  const lines: any[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  const s = await startServer(
    { ...defaultServeSettings, port: 0, host: '127.0.0.1', selfSigned: true, shutdownDelaySeconds: 0, ...overrides },
    { logger: pino({ level: 'info' }, sink) },
  );
  t.teardown(() => s.shutdown('test end'));
  const validate = (body: unknown, query = '?timeout=10s') => post(s.url, s.certificate, `/validate${query}`, body);
  const mutate = (body: unknown) => post(s.url, s.certificate, '/mutate?timeout=10s', body);
  return { s, lines, validate, mutate };
}

const badRec = () => rec({ method: 'istio', apiFqdnUrl: 'api.redis.example.com', dbFqdnSuffix: '-redis.example.com' });

t.test('allow, deny and warn over real TLS', async (t) => {
  const { validate, lines } = await server(t);
  const review = admissionReview(rec());
  const ok = await validate(review);
  t.equal(ok.status, 200);
  t.same(ok.body, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true } });

  const deny = await validate(admissionReview(gateway(['*-redis.example.com', 'redis'])));
  t.equal(deny.body.response.allowed, false);
  t.equal(deny.body.response.status.code, 403);
  t.equal(deny.body.response.status.reason, 'Forbidden');
  t.same(deny.body.response.status.message.split('\n'), [
    'spec.servers[0].hosts[0]: Invalid value: "*-redis.example.com": partial wildcard "*-redis.example.com" not allowed: Istio and Envoy match "*" only as the whole leftmost label; use "*.redis.example.com"',
    'spec.servers[0].hosts[1]: Invalid value: "redis": short names (non FQDN) are not allowed: a Gateway host must be a fully qualified name or "*"',
  ]);

  const warn = await validate(admissionReview(rec({ method: 'istio', apiFqdnUrl: 'api.other.example.com', dbFqdnSuffix: '.redis.example.com' })));
  t.equal(warn.body.response.allowed, true);
  t.same(warn.body.response.warnings, [
    'spec.ingressOrRouteSpec.apiFqdnUrl: Invalid value: "api.other.example.com": not covered by the database wildcard "*.redis.example.com": the Gateway needs a second host and DNS a second record',
  ]);

  const line = lines.find((l) => l.msg === 'admission' && l.allowed === false);
  t.match(line, { kind: 'networking.istio.io/v1/Gateway', operation: 'CREATE', dryRun: false, rules: ['gateway-host'], namespace: 'istio-system', name: 'redis-gateway' });
  t.type(line.durationMs, 'number');
  t.notOk(JSON.stringify(lines).includes('"spec"'), 'objects are never logged');
});

t.test('UPDATE ratchets unchanged bad values, DELETE and dry-run', async (t) => {
  const { validate } = await server(t);
  const old = badRec();
  const relabelled = { ...badRec(), metadata: { ...old.metadata, labels: { team: 'a' } } };
  const ratchet = await validate(admissionReview(relabelled, { operation: 'UPDATE', oldObject: old }));
  t.equal(ratchet.body.response.allowed, true);
  t.equal(ratchet.body.response.warnings.length, 1);
  t.ok(ratchet.body.response.warnings[0].endsWith(RATCHET_NOTE));

  const changed = rec({ method: 'istio', apiFqdnUrl: 'api.redis.example.com', dbFqdnSuffix: '-other.example.com' });
  const refused = await validate(admissionReview(changed, { operation: 'UPDATE', oldObject: old }));
  t.equal(refused.body.response.allowed, false);
  t.match(refused.body.response.status.message, /"-other.example.com"/);

  const del = await validate(admissionReview(badRec(), { operation: 'DELETE', oldObject: old }));
  t.equal(del.body.response.allowed, true);

  const dry = await validate(admissionReview(badRec(), { dryRun: true }));
  const wet = await validate(admissionReview(badRec()));
  t.equal(dry.body.response.allowed, false);
  t.same(dry.body.response.status, wet.body.response.status, 'dry-run is judged like any request');
});

t.test('kinds and versions that are not ours are allowed with no finding', async (t) => {
  const { validate } = await server(t);
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' }, spec: { hosts: ['*-x.com'] } };
  const r1 = await validate(admissionReview(pod));
  t.same(r1.body.response, { uid: r1.body.response.uid, allowed: true });
  const future = admissionReview(gateway(['*-redis.example.com']), { kind: { group: 'networking.istio.io', version: 'v2', kind: 'Gateway' } });
  t.same((await validate(future)).body.response.allowed, true);
  const se = admissionReview({ apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'x' } });
  t.same((await validate(se)).body.response.allowed, true);
});

t.test('malformed input is a 400 with a JSON reason', async (t) => {
  const { s, validate } = await server(t, { bodyLimit: 64 * 1024 });
  const review = admissionReview(rec());
  const cases: { name: string; send: () => Promise<{ status: number; body: any }>; message: RegExp }[] = [
    { name: 'not JSON', send: () => post(s.url, s.certificate, '/validate', null, { raw: '{"apiVersion": ' }), message: /JSON|Unexpected/i },
    { name: 'empty body', send: () => post(s.url, s.certificate, '/validate', null, { raw: '' }), message: /empty/i },
    { name: 'not JSON content type', send: () => post(s.url, s.certificate, '/validate', review, { contentType: 'text/plain' }), message: /must be object/ },
    { name: 'not an AdmissionReview', send: () => validate({ ...review, kind: 'Pod' }), message: /kind/ },
    { name: 'wrong version', send: () => validate({ ...review, apiVersion: 'admission.k8s.io/v1beta1' }), message: /apiVersion/ },
    { name: 'no request', send: () => validate({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), message: /request/ },
    { name: 'no uid', send: () => validate({ ...review, request: { ...review.request, uid: undefined } }), message: /uid/ },
    { name: 'empty uid', send: () => validate({ ...review, request: { ...review.request, uid: '' } }), message: /uid/ },
    { name: 'uid not a string', send: () => validate({ ...review, request: { ...review.request, uid: 42 } }), message: /uid/ },
    { name: 'bad operation', send: () => validate({ ...review, request: { ...review.request, operation: 'PATCH' } }), message: /operation/ },
    { name: 'CREATE without object', send: () => validate({ ...review, request: { ...review.request, object: null } }), message: /request.object/ },
    { name: 'a JSON array', send: () => validate([review]), message: /object/ },
    { name: 'bad timeout', send: () => validate(review, '?timeout=soon'), message: /timeout/ },
    { name: 'over the body limit', send: () => validate({ ...review, pad: 'x'.repeat(70 * 1024) }), message: /too large|limit/i },
  ];
  for (const c of cases) {
    const res = await c.send();
    t.equal(res.status, 400, c.name);
    t.equal(res.body?.error, 'Bad Request', `${c.name}: JSON error`);
    t.match(res.body?.message, c.message, `${c.name}: ${res.body?.message}`);
  }
  const metrics = await get(s.url, s.certificate, '/metrics');
  t.match(metrics.text, /redis_istio_guard_bad_requests_total\{reason="schema"\} \d+/);
  t.equal((await validate(review)).status, 200, 'still serving after bad input');
});

t.test('mutation rewrites hyphen suffixes, once, and only with --mutate', async (t) => {
  const on = await server(t, { mutate: true });
  const res = await on.mutate(admissionReview(badRec()));
  t.equal(res.body.response.allowed, true);
  t.equal(res.body.response.patchType, 'JSONPatch');
  const patch = JSON.parse(Buffer.from(res.body.response.patch, 'base64').toString());
  t.same(patch, [
    { op: 'test', path: '/spec/ingressOrRouteSpec/dbFqdnSuffix', value: '-redis.example.com' },
    { op: 'replace', path: '/spec/ingressOrRouteSpec/dbFqdnSuffix', value: '.redis.example.com' },
  ]);
  t.same(res.body.response.warnings, [
    'spec.ingressOrRouteSpec.dbFqdnSuffix: changed "-redis.example.com" to ".redis.example.com": Istio rejects the partial wildcard "*-redis.example.com"',
  ]);
  const mutated = rec({ method: 'istio', apiFqdnUrl: 'api.redis.example.com', dbFqdnSuffix: '.redis.example.com' });
  const again = await on.mutate(admissionReview(mutated));
  t.same(again.body.response, { uid: again.body.response.uid, allowed: true }, 'idempotent: nothing left to patch');
  t.equal((await on.validate(admissionReview(mutated))).body.response.allowed, true, 'the mutated object passes validation');
  const other = await on.mutate(admissionReview(rec({ method: 'istio', apiFqdnUrl: 'api.redis.example.com', dbFqdnSuffix: 'redis.example.com' })));
  t.notOk(other.body.response.patch, 'a suffix without separator is not mutated');
  const ingress = await on.mutate(admissionReview(rec({ method: 'ingress', apiFqdnUrl: 'api.example.com', dbFqdnSuffix: '-redis.example.com' })));
  t.notOk(ingress.body.response.patch, 'method ingress keeps its hyphen');
  const vs = await on.mutate(admissionReview(virtualService(['*-redis.example.com'])));
  t.notOk(vs.body.response.patch, 'nothing else is mutated');

  const off = await server(t, { mutate: false });
  const plain = await off.mutate(admissionReview(badRec()));
  t.same(plain.body.response, { uid: plain.body.response.uid, allowed: true }, 'without --mutate, /mutate allows and patches nothing');
});

t.test('health, readiness and metrics', async (t) => {
  const { s, validate } = await server(t);
  t.same((await get(s.url, s.certificate, '/healthz')).body, { status: 'ok' });
  t.same((await get(s.url, s.certificate, '/readyz')).body, { status: 'ready' });
  await validate(admissionReview(badRec()));
  const metrics = (await get(s.url, s.certificate, '/metrics')).text;
  t.match(metrics, /redis_istio_guard_admission_requests_total\{kind="RedisEnterpriseCluster",operation="CREATE",allowed="false",endpoint="validate"\} 1/);
  t.match(metrics, /redis_istio_guard_findings_total\{rule="rec-db-suffix",severity="error"\} 1/);
  t.match(metrics, /redis_istio_guard_admission_duration_seconds_bucket\{le="30",kind="RedisEnterpriseCluster"/);
  t.match(metrics, /redis_istio_guard_certificate_expiry_timestamp_seconds \d+/);
});
