import t from 'tap';
import { Registry } from 'prom-client';
import { ClusterCache, describeError, resourcePath, RESOURCES, statusOf, type Timings } from '../../../src/cluster/informers.ts';
import { Readiness } from '../../../src/server/health-plugin.ts';
import { FakeApi, httpError, service, until } from './fake-api.ts';

const FAST: Partial<Timings> = {
  backoffInitialMs: 10,
  backoffMaxMs: 40,
  absentRecheckMs: 60,
  staleAfterMs: 150,
  listTimeoutMs: 2000,
  watchdogMs: 60_000,
  relistMs: 60_000,
};

function setup(t: { teardown(fn: () => unknown): void }, opts: { api?: FakeApi; timings?: Partial<Timings>; namespaces?: string[]; namespaceAnnotations?: boolean } = {}) {
  const api = opts.api ?? new FakeApi();
  const readiness = new Readiness();
  const registry = new Registry();
  const logs: { level: string; msg: string; obj: object }[] = [];
  const log = {
    info: (obj: object, msg: string) => logs.push({ level: 'info', msg, obj }),
    warn: (obj: object, msg: string) => logs.push({ level: 'warn', msg, obj }),
    error: (obj: object, msg: string) => logs.push({ level: 'error', msg, obj }),
    debug: () => {},
  };
  const cache = new ClusterCache({
    transport: api,
    readiness,
    registry,
    log,
    timings: { ...FAST, ...opts.timings },
    ...(opts.namespaces ? { namespaces: opts.namespaces } : {}),
    ...(opts.namespaceAnnotations !== undefined ? { namespaceAnnotations: opts.namespaceAnnotations } : {}),
  });
  t.teardown(() => cache.stop());
  return { api, cache, readiness, registry, logs, index: cache.index };
}

const reflector = (cache: ClusterCache, kind: string) => {
  const r = cache.reflectors.find((x) => x.spec.kind === kind);
  if (!r) throw new Error(`no ${kind} reflector`);
  return r;
};

t.test('paths and errors', async (t) => {
  t.equal(resourcePath(RESOURCES.Service, 'v1'), '/api/v1/services');
  t.equal(resourcePath(RESOURCES.Service, 'v1', 'redis'), '/api/v1/namespaces/redis/services');
  t.equal(resourcePath(RESOURCES.Gateway, 'v1beta1', 'x'), '/apis/networking.istio.io/v1beta1/namespaces/x/gateways');
  t.equal(resourcePath(RESOURCES.Namespace, 'v1', 'x'), '/api/v1/namespaces', 'cluster-scoped');
  t.equal(statusOf(httpError(404)), 404);
  t.equal(statusOf({ statusCode: 410 }), 410);
  t.equal(statusOf({ code: 'ECONNREFUSED' }), undefined);
  t.equal(statusOf(null), undefined);
  t.equal(describeError(httpError(403, 'services is forbidden: User "x" cannot list')), 'HTTP 403: services is forbidden: User "x" cannot list');
  t.equal(describeError({ code: 500, body: '{"message":"boom"}', message: 'HTTP-Code: 500\nMessage: ...' }), 'HTTP 500: boom');
  t.equal(describeError(Object.assign(new Error('fetch failed'), { cause: { code: 'ECONNREFUSED' } })), 'fetch failed (ECONNREFUSED)');
  t.equal(describeError('plain'), 'plain');
});

t.test('first list: readiness blocked until every informer synced, then watches follow changes', async (t) => {
  const api = new FakeApi();
  let open!: () => void;
  api.gate = new Promise((r) => (open = r));
  for (let i = 0; i < 5; i++) api.put('Service', service(`s${i}`, [80 + i]));
  api.put('Gateway', { apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'gw', namespace: 'istio-system' }, spec: { servers: [{ hosts: ['a.example.com'] }] } });
  const listedRv = String(api.rv);
  const { cache, readiness, index } = setup(t, { api, timings: { pageSize: 2 } });
  cache.start();
  t.equal(readiness.ready, false);
  t.same(readiness.reasons.sort(), [
    'Gateway cache: first list not finished',
    'Namespace cache: first list not finished',
    'RedisEnterpriseCluster cache: first list not finished',
    'RedisEnterpriseDatabase cache: first list not finished',
    'Service cache: first list not finished',
  ]);
  t.notOk(index.complete('Service', 'redis'));
  t.equal(index.incompleteReason('Service', 'redis'), 'the Service cache has not finished its first list');
  open();
  api.gate = undefined;
  await cache.synced();
  t.equal(readiness.ready, true, 'ready once every first list is done');
  t.equal(index.size('Service'), 5, 'all pages listed');
  t.ok(api.calls.some((c) => c.op === 'list' && c.kind === 'Service' && c.continue === '2'), 'paged');
  t.ok(index.complete('Service', 'redis'));
  t.ok(index.complete('Gateway', 'anywhere'));
  t.same(index.gateway('istio-system', 'gw')?.hosts, ['a.example.com']);

  await until(() => api.watchers.size === 5, 'five watches');
  api.put('Service', service('new', [1]));
  api.put('Service', service('s0', [9999]));
  api.remove('Service', 'redis', 's1');
  api.put('RedisEnterpriseDatabase', { apiVersion: 'app.redislabs.com/v1alpha1', kind: 'RedisEnterpriseDatabase', metadata: { name: 'db1', namespace: 'redis' }, spec: { databasePort: 12000 } });
  await until(() => index.service('redis', 'new') !== undefined && index.service('redis', 's1') === undefined && index.service('redis', 'db1') !== undefined, 'events applied');
  t.same(index.service('redis', 's0')?.ports, [{ port: 9999 }], 'port change followed');
  t.equal(index.service('redis', 'db1')?.predictedBy, 'RedisEnterpriseDatabase "db1"');
  const w = api.calls.filter((c) => c.op === 'watch' && c.kind === 'Service');
  t.equal(w.length, 1);
  t.equal(w[0]?.rv, listedRv, 'the watch starts at the list resourceVersion');
});

t.test('list failures: backoff, retry, readiness reason names the error, restarts counted', async (t) => {
  const api = new FakeApi();
  api.failLists = 3;
  const { cache, readiness, registry } = setup(t, { api, namespaceAnnotations: false });
  cache.start();
  await until(() => readiness.reasons.some((r) => r.includes('last error: HTTP 500: etcd is sad')), 'reason with the error');
  await cache.synced();
  t.equal(readiness.ready, true);
  const text = await registry.metrics();
  const restarts = [...text.matchAll(/redis_istio_guard_cache_restarts_total\{kind="(\w+)",namespace="\*",reason="error"\} (\d+)/g)];
  t.equal(restarts.reduce((n, m) => n + Number(m[2]), 0), 3, 'three failed lists, three restarts');
  t.match(text, /redis_istio_guard_cache_synced\{kind="Service",namespace="\*"\} 1/);
  t.match(text, /redis_istio_guard_cache_age_seconds\{kind="Service",namespace="\*"\} \d/);
  t.match(text, /redis_istio_guard_cache_objects\{kind="Service"\} 0/);
  t.match(text, /redis_istio_guard_cache_relists_total\{kind="Service",namespace="\*"\} 1/);
});

t.test('an absent CRD counts as synced and empty, and is picked up when installed', async (t) => {
  const api = new FakeApi();
  api.absent.add('Gateway');
  api.absent.add('RedisEnterpriseCluster');
  const { cache, readiness, index, registry, logs } = setup(t, { api });
  cache.start();
  await cache.synced();
  t.equal(readiness.ready, true, 'no Istio installed does not hold readiness');
  t.ok(reflector(cache, 'Gateway').absent);
  t.ok(index.complete('Gateway', 'istio-system'), 'no Gateway API: no Gateway exists');
  t.match(await registry.metrics(), /redis_istio_guard_cache_api_available\{kind="Gateway",namespace="\*"\} 0/);
  t.ok(logs.some((l) => l.msg.includes('API not served')));
  t.same(
    api.calls.filter((c) => c.op === 'list' && c.kind === 'Gateway').map((c) => c.version),
    ['v1', 'v1beta1', 'v1alpha3'],
    'every version tried',
  );

  api.absent.delete('Gateway');
  api.put('Gateway', { apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'gw', namespace: 'istio-system' }, spec: { servers: [] } });
  await until(() => index.gateway('istio-system', 'gw') !== undefined, 'Gateway found after the CRD appears');
  t.notOk(reflector(cache, 'Gateway').absent);
  await until(() => api.watchers.size >= 4, 'Gateway watch running');
  api.put('Gateway', { apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'gw2', namespace: 'istio-system' }, spec: {} });
  await until(() => index.gateway('istio-system', 'gw2') !== undefined, 'and watched');

  // The CRD removed again: its objects leave the cache.
  api.absent.add('Gateway');
  api.closeWatches(Object.assign(new Error('Not Found'), { statusCode: 404 }));
  await until(() => index.size('Gateway') === 0, 'Gateways gone with their CRD');
});

t.test('an older served version is used', async (t) => {
  const api = new FakeApi();
  api.servedVersions.set('Gateway', ['v1alpha3']);
  api.put('Gateway', { apiVersion: 'networking.istio.io/v1alpha3', kind: 'Gateway', metadata: { name: 'old', namespace: 'istio-system' }, spec: {} });
  const { cache, index } = setup(t, { api });
  cache.start();
  await cache.synced();
  t.ok(index.gateway('istio-system', 'old'));
  t.equal(reflector(cache, 'Gateway').version, 'v1alpha3');
  await until(() => api.calls.some((c) => c.op === 'watch' && c.kind === 'Gateway'), 'watch');
  t.equal(api.calls.find((c) => c.op === 'watch' && c.kind === 'Gateway')?.version, 'v1alpha3');
});

t.test('Namespaces are optional: forbidden means no namespace annotations, not a wedged readiness', async (t) => {
  const api = new FakeApi();
  api.forbidden.add('Namespace');
  const { cache, readiness, logs } = setup(t, { api });
  cache.start();
  await cache.synced();
  t.equal(readiness.ready, true);
  t.ok(reflector(cache, 'Namespace').absent);
  t.ok(logs.some((l) => l.msg.includes('not permitted')));

  // A forbidden Service list is not optional: readiness waits, and says why.
  const api2 = new FakeApi();
  api2.forbidden.add('Service');
  const s2 = setup(t, { api: api2 });
  s2.cache.start();
  await until(() => s2.readiness.reasons.some((r) => r.includes('HTTP 403: services is forbidden')), '403 in the reason');
  t.equal(s2.readiness.ready, false);
  api2.forbidden.delete('Service');
  await s2.cache.synced();
  t.equal(s2.readiness.ready, true, 'ready once RBAC allows it');

  // Namespace annotations reach the index.
  const api3 = new FakeApi();
  api3.put('Namespace', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'redis', annotations: { 'redis-istio-guard.io/skip-rules': 'vs-gateway-exists' } } } as never);
  const s3 = setup(t, { api: api3 });
  s3.cache.start();
  await s3.cache.synced();
  t.same(s3.index.namespace('redis')?.annotations, { 'redis-istio-guard.io/skip-rules': 'vs-gateway-exists' });
});

t.test('watch ends: clean close and timeout resume from the last resourceVersion; 410 relists', async (t) => {
  const api = new FakeApi();
  api.put('Service', service('a', [1]));
  const { cache, index } = setup(t, { api, namespaceAnnotations: false });
  cache.start();
  await cache.synced();
  await until(() => api.watchers.size === 4, 'watches');
  api.put('Service', service('b', [2]));
  await until(() => index.service('redis', 'b') !== undefined, 'b');
  const rvAfterB = String(api.rv);
  api.closeWatches();
  await until(() => api.calls.filter((c) => c.op === 'watch' && c.kind === 'Service').length === 2, 'rewatch after close');
  t.equal(api.calls.filter((c) => c.op === 'watch' && c.kind === 'Service')[1]?.rv, rvAfterB, 'resumed from the last event');
  t.equal(api.listCount('Service'), 1, 'no relist after a clean close');

  api.closeWatches(Object.assign(new Error('aborted'), { name: 'TimeoutError' }));
  await until(() => api.calls.filter((c) => c.op === 'watch' && c.kind === 'Service').length === 3, 'rewatch after timeout');
  t.equal(api.listCount('Service'), 1, 'no relist after a client timeout');

  // Changes while the watch is expired are recovered by the relist, deletes included.
  await until(() => api.watchers.size === 4, 'watches again');
  api.silent = true;
  api.remove('Service', 'redis', 'a');
  api.put('Service', service('c', [3]));
  api.silent = false;
  api.expireWatches();
  await until(() => index.service('redis', 'c') !== undefined && index.service('redis', 'a') === undefined, 'relist healed the gap');
  t.equal(api.listCount('Service'), 2);
  t.ok(reflector(cache, 'Service').restarts >= 1);
});

t.test('watch failures: resume with backoff, relist after repeated ones, stale after a while', async (t) => {
  const api = new FakeApi();
  api.put('Service', service('a', [1]));
  const { cache, index, registry } = setup(t, { api, namespaceAnnotations: false, timings: { relistAfterFailures: 3, staleAfterMs: 100, backoffInitialMs: 40, backoffMaxMs: 80 } });
  cache.start();
  await cache.synced();
  await until(() => api.watchers.size === 4, 'watches');
  api.failWatches = 1000;
  api.failLists = 1000;
  api.closeWatches(new Error('socket hang up'));
  await until(() => api.listCount('Service') >= 2, 'a relist tried after three failed watches', 5000);
  await until(() => !index.complete('Service', 'redis'), 'stale after staleAfterMs', 5000);
  t.match(index.incompleteReason('Service', 'redis'), /^the \w+ cache is stale: the API server has not answered its watch for \d+ s \(last error: .+\)$/);
  t.ok(index.service('redis', 'a'), 'stale data is still served');
  t.match(await registry.metrics(), /redis_istio_guard_cache_restarts_total\{kind="Service",namespace="\*",reason="error"\} [1-9]/);
  api.failWatches = 0;
  api.failLists = 0;
  await until(() => index.complete('Service', 'redis'), 'healthy again', 5000);
});

t.test('watchdog: a watch that stays silent is restarted and relisted', async (t) => {
  const api = new FakeApi();
  const { cache, index, registry } = setup(t, { api, namespaceAnnotations: false, timings: { watchdogMs: 150 } });
  cache.start();
  await cache.synced();
  api.silent = true;
  api.put('Service', service('missed', [1]));
  await until(() => index.service('redis', 'missed') !== undefined, 'the relist after the watchdog finds it', 5000);
  t.match(await registry.metrics(), /redis_istio_guard_cache_restarts_total\{kind="Service",namespace="\*",reason="watchdog"\} [1-9]/);
  // Bookmarks keep a quiet watch alive.
  api.silent = false;
  const restarts = reflector(cache, 'Service').restarts;
  const timer = setInterval(() => api.bookmark(), 30);
  t.teardown(() => clearInterval(timer));
  await new Promise((r) => setTimeout(r, 400));
  t.equal(reflector(cache, 'Service').restarts, restarts, 'no restart while bookmarks arrive');
});

t.test('scheduled relist heals missed events', async (t) => {
  const api = new FakeApi();
  const { cache, index } = setup(t, { api, namespaceAnnotations: false, timings: { relistMs: 200 } });
  cache.start();
  await cache.synced();
  api.silent = true;
  api.put('Service', service('late', [1]));
  await until(() => index.service('redis', 'late') !== undefined, 'relist on schedule', 5000);
  t.ok(api.listCount('Service') >= 2);
});

t.test('a namespace list: one reflector per namespace; others are not judged', async (t) => {
  const api = new FakeApi();
  api.put('Service', service('a', [1], 'redis'));
  api.put('Service', service('b', [1], 'apps'));
  const { cache, index } = setup(t, { api, namespaces: ['redis', 'istio-system'] });
  cache.start();
  await cache.synced();
  t.equal(cache.reflectors.length, 9, 'four kinds in two namespaces, and Namespaces');
  t.ok(index.service('redis', 'a'));
  t.notOk(index.service('apps', 'b'), 'apps is not watched');
  t.ok(index.complete('Service', 'redis'));
  t.notOk(index.complete('Service', 'apps'));
  t.equal(index.incompleteReason('Service', 'apps'), 'namespace "apps" is not watched (watched: redis, istio-system)');
  t.ok(api.calls.every((c) => c.kind === 'Namespace' || c.namespace === 'redis' || c.namespace === 'istio-system'));
});

t.test('stop ends promptly, even with a list in flight', async (t) => {
  const api = new FakeApi();
  api.gate = new Promise(() => {}); // never answers
  const { cache } = setup(t, { api });
  cache.start();
  await new Promise((r) => setTimeout(r, 20));
  const started = Date.now();
  await cache.stop();
  t.ok(Date.now() - started < 1000, `stopped in ${Date.now() - started} ms`);
});

t.test('a list that hangs times out and is retried', async (t) => {
  const api = new FakeApi();
  let hang = true;
  const realList = api.list.bind(api);
  api.list = async (...args) => {
    if (hang && args[0].kind === 'Service') {
      hang = false;
      return new Promise(() => {});
    }
    return realList(...args);
  };
  const { cache, readiness } = setup(t, { api, timings: { listTimeoutMs: 100 } });
  cache.start();
  await cache.synced();
  t.equal(readiness.ready, true);
  t.ok(reflector(cache, 'Service').restarts >= 1);
});
