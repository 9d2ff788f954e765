/** `serve` with cluster checks on, fed by the in-memory API: readiness, decisions, metrics, settings. */
import t from 'tap';
import { pino } from 'pino';
import { defaultServeSettings, parseClusterDomain, parseNamespaces, type ServeSettings } from '../../../src/config.ts';
import { resolveClusterAccess } from '../../../src/cluster/credentials.ts';
import { startServer } from '../../../src/server/serve.ts';
import { virtualService } from '../../fixtures/objects.ts';
import { admissionReview, get, post } from '../../helpers/review.ts';
import { FakeApi, service, until } from './fake-api.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const quiet = pino({ level: 'silent' });

async function serve(t: { teardown(fn: () => unknown): void }, api: FakeApi, overrides: Partial<ServeSettings> = {}) {
  const s = await startServer(
    { ...defaultServeSettings, port: 0, host: '127.0.0.1', selfSigned: true, shutdownDelaySeconds: 0, ...overrides },
    { logger: quiet, clusterTransport: api, clusterTimings: { backoffInitialMs: 10, backoffMaxMs: 20 } },
  );
  t.teardown(() => s.shutdown('test end'));
  const validate = async (obj: ReturnType<typeof virtualService>) => (await post(s.url, s.certificate, '/validate?timeout=10s', admissionReview(obj))).body.response;
  return { s, validate };
}

const vs = (host: string, port: number, namespace = 'redis') =>
  virtualService(['*.redis.example.com'], [{ sniHosts: ['db1.redis.example.com'], host, port }], { namespace, gateways: ['mesh'] });

t.test('readiness waits for the first lists; a VirtualService is refused, then accepted once its Service exists', async (t) => {
  const api = new FakeApi();
  let open!: () => void;
  api.gate = new Promise((r) => (open = r));
  const { s, validate } = await serve(t, api);
  const before = await get(s.url, s.certificate, '/readyz');
  t.equal(before.status, 503);
  t.ok(before.body.reasons.includes('Service cache: first list not finished'), before.text);
  // Not synced yet: the check is skipped with a warning (on-cache-miss allow).
  const early = await validate(vs('db1', 12000));
  t.equal(early.allowed, true);
  t.match(early.warnings, [/rule vs-destination-service skipped for "db1" .*: the Service cache has not finished its first list; allowed without this check \(on-cache-miss: allow\)/]);

  open();
  api.gate = undefined;
  await until(() => s.readiness.ready, 'ready');
  t.equal((await get(s.url, s.certificate, '/readyz')).status, 200);

  const refused = await validate(vs('db1', 12000));
  t.equal(refused.allowed, false);
  t.match(refused.status.message, /^spec\.tls\[0\]\.route\[0\]\.destination\.host: Invalid value: "db1": Service "db1" not found in namespace "redis"/);

  api.put('Service', service('db1', [12000]));
  await until(() => s.cluster?.index.service('redis', 'db1') !== undefined, 'cache has db1');
  const accepted = await validate(vs('db1', 12000));
  t.same(accepted, { uid: accepted.uid, allowed: true });

  api.put('Service', service('db1', [6379]));
  await until(() => s.cluster?.index.service('redis', 'db1')?.ports[0]?.port === 6379, 'port change');
  const wrongPort = await validate(vs('db1', 12000));
  t.equal(wrongPort.allowed, false);
  t.match(wrongPort.status.message, /has no port 12000.*its ports: 6379; use 6379/);

  const metrics = await get(s.url, s.certificate, '/metrics');
  t.match(metrics.text, /redis_istio_guard_cache_synced\{kind="Service",namespace="\*"\} 1/);
  t.match(metrics.text, /redis_istio_guard_cache_objects\{kind="Service"\} 1/);
  t.match(metrics.text, /redis_istio_guard_findings_total\{rule="vs-destination-service",severity="error"\} 1/);

  await s.shutdown('test');
  t.equal(api.watchers.size, 0, 'watches stopped on shutdown');
});

t.test('on-cache-miss deny, a namespace list and the cluster domain', async (t) => {
  const api = new FakeApi();
  api.put('Service', service('db1', [12000]));
  const { s, validate } = await serve(t, api, { namespaces: ['redis'], onCacheMiss: 'deny', clusterDomain: 'corp.example' });
  await s.cluster?.synced();
  t.equal((await validate(vs('db1.redis.svc.corp.example', 12000, 'istio-system'))).allowed, true, 'the cluster domain is used');
  const denied = await validate(vs('db1.apps.svc.corp.example', 12000));
  t.equal(denied.allowed, false);
  t.match(denied.status.message, /could not check "db1\.apps\.svc\.corp\.example" .*namespace "apps" is not watched \(watched: redis\); denied because on-cache-miss is deny/);
  t.equal((await validate(vs('db1.apps.svc.cluster.local', 12000))).allowed, true, 'another domain is not judged');
});

t.test('settings parsing', async (t) => {
  t.same(parseNamespaces('redis, istio-system,,redis'), ['redis', 'istio-system']);
  t.same(parseNamespaces(''), []);
  t.throws(() => parseNamespaces('Redis'), /not a valid namespace name/);
  t.throws(() => parseNamespaces('a/b'), /not a valid namespace name/);
  t.equal(parseClusterDomain('.cluster.local.'), 'cluster.local');
  t.throws(() => parseClusterDomain('bad_domain'), /cluster domain "bad_domain"/);
});

t.test('credentials: auto stays off on a laptop, on reads what it can, off is off', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rig-creds-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, 'config');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443' } }],
      users: [{ name: 'u', user: { token: 'x' } }],
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'ctx',
    }),
  );
  const home = join(dir, 'home');
  t.match(resolveClusterAccess({ mode: 'off', kubeconfig }, {}, home), { enabled: false, reason: /--cluster-checks off/ });
  t.match(resolveClusterAccess({ mode: 'auto' }, { KUBECONFIG: kubeconfig }, home), { enabled: false, reason: /not running in a pod and no --kubeconfig/ });
  t.match(resolveClusterAccess({ mode: 'auto', kubeconfig }, {}, home), { enabled: true, source: `--kubeconfig ${kubeconfig}` });
  t.match(resolveClusterAccess({ mode: 'on' }, { KUBECONFIG: kubeconfig }, home), { enabled: true, source: `KUBECONFIG ${kubeconfig}` });
  t.throws(() => resolveClusterAccess({ mode: 'on' }, {}, home), /no credentials/);
  t.throws(() => resolveClusterAccess({ mode: 'on', kubeconfig: join(dir, 'nope') }, {}, home), /does not exist/);
  t.throws(() => resolveClusterAccess({ mode: 'on' }, { KUBECONFIG: join(dir, 'nope') }, home), /KUBECONFIG names no existing file/);
  const empty = join(dir, 'empty');
  writeFileSync(empty, JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [], users: [], contexts: [] }));
  t.throws(() => resolveClusterAccess({ mode: 'on', kubeconfig: empty }, {}, home), /no current cluster/);

  // serve with cluster checks off starts and is ready at once ('auto' would be on inside a CI pod).
  const s = await startServer({ ...defaultServeSettings, port: 0, host: '127.0.0.1', selfSigned: true, shutdownDelaySeconds: 0, clusterChecks: 'off' }, { logger: quiet });
  t.teardown(() => s.shutdown('test end'));
  t.equal(s.cluster, undefined);
  t.equal(s.readiness.ready, true);
});
