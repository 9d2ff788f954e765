import t from 'tap';
import { alwaysComplete, ClusterIndex, completeWhereSeen, indexedKindOf } from '../../../src/cluster/index.ts';
import { gateway, rec, redb } from '../../fixtures/objects.ts';

const svc = (name: string, ports: unknown, namespace = 'redis') => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace },
  spec: ports === undefined ? {} : { ports },
});

t.test('kinds are recognised by apiVersion and kind', async (t) => {
  const cases: [unknown, string | undefined][] = [
    [svc('a', []), 'Service'],
    [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'redis' } }, 'Namespace'],
    [gateway(['a.example.com']), 'Gateway'],
    [gateway(['a.example.com'], { apiVersion: 'networking.istio.io/v1alpha3' }), 'Gateway'],
    [rec(), 'RedisEnterpriseCluster'],
    [redb('db1'), 'RedisEnterpriseDatabase'],
    [{ apiVersion: 'apps/v1', kind: 'Service' }, undefined],
    [{ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway' }, undefined],
    [{ kind: 'Service' }, undefined],
    [null, undefined],
    ['Service', undefined],
  ];
  for (const [obj, want] of cases) t.equal(indexedKindOf(obj), want, JSON.stringify(obj));
});

t.test('services: real ports, malformed ports, shared shapes', async (t) => {
  const idx = new ClusterIndex();
  t.ok(idx.upsert(svc('db1', [{ name: 'redis', port: 12000, targetPort: 12000 }])));
  t.ok(idx.upsert(svc('noports', undefined)));
  t.ok(idx.upsert(svc('nullports', null)));
  t.ok(idx.upsert(svc('junk', [null, 'x', { port: '80' }, { port: 0 }, { port: 70000 }, { port: 8.5 }, { name: 7, port: 81 }, { name: '', port: 82 }])));
  t.notOk(idx.upsert({ apiVersion: 'v1', kind: 'Service', metadata: {} }), 'no name: ignored');
  t.notOk(idx.upsert({ apiVersion: 'v1', kind: 'Service' }), 'no metadata: ignored');
  t.notOk(idx.upsert({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }));
  t.same(idx.service('redis', 'db1'), { namespace: 'redis', name: 'db1', ports: [{ name: 'redis', port: 12000 }] });
  t.same(idx.service('redis', 'noports')?.ports, []);
  t.same(idx.service('redis', 'nullports')?.ports, []);
  t.same(idx.service('redis', 'junk')?.ports, [{ port: 81 }, { port: 82 }]);
  t.equal(idx.service('other', 'db1'), undefined);
  t.equal(idx.size('Service'), 4);
  t.same(idx.serviceNames('redis'), ['db1', 'junk', 'noports', 'nullports']);
  t.same(idx.serviceNames('nowhere'), []);

  // A lookup hands out a copy: mutating it does not change the index.
  const view = idx.service('redis', 'db1');
  t.throws(() => {
    (view?.ports[0] as { port: number }).port = 1;
  }, 'port objects are frozen');
  view?.ports.push({ port: 1 });
  t.same(idx.service('redis', 'db1')?.ports, [{ name: 'redis', port: 12000 }]);

  t.ok(idx.upsert(svc('db1', [{ name: 'redis', port: 12001 }])), 'replace');
  t.same(idx.service('redis', 'db1')?.ports, [{ name: 'redis', port: 12001 }]);
  t.equal(idx.size('Service'), 4, 'a replace does not count twice');
  t.ok(idx.delete(svc('db1', [])));
  t.notOk(idx.delete(svc('db1', [])), 'already gone');
  t.equal(idx.service('redis', 'db1'), undefined);
  t.equal(idx.size('Service'), 3);
});

t.test('list items without apiVersion and kind, and the namespace fallback', async (t) => {
  const idx = new ClusterIndex();
  t.notOk(idx.upsert({ metadata: { name: 'a', namespace: 'x' }, spec: { ports: [{ port: 80 }] } }), 'kind unknown');
  t.ok(idx.upsert({ metadata: { name: 'a', namespace: 'x' }, spec: { ports: [{ port: 80 }] } }, 'Service'));
  t.ok(idx.upsert({ metadata: { name: 'b' }, spec: {} }, 'Service', 'given'));
  t.ok(idx.service('x', 'a'));
  t.ok(idx.service('given', 'b'));
  t.ok(idx.upsert({ metadata: { name: 'c' } }, 'Service'));
  t.ok(idx.service('default', 'c'), 'default namespace when none is known');
});

t.test('operator-predicted Services; a real Service wins', async (t) => {
  const idx = new ClusterIndex();
  idx.upsert(rec());
  idx.upsert(redb('db1', { databasePort: 12000 }));
  idx.upsert(redb('db2', { databasePort: 12000, databaseServicePort: 6379 }));
  idx.upsert(redb('db3'));
  idx.upsert({ ...redb('db4'), spec: { databasePort: 'x', databaseServicePort: -1 } });
  idx.upsert({ apiVersion: 'app.redislabs.com/v1alpha1', kind: 'RedisEnterpriseDatabase', metadata: { name: 'db5', namespace: 'redis' } });
  t.same(idx.service('redis', 'rec'), {
    namespace: 'redis',
    name: 'rec',
    ports: [{ name: 'api', port: 9443 }],
    predictedBy: 'RedisEnterpriseCluster "rec"',
  });
  t.same(idx.service('redis', 'rec-ui')?.ports, [{ name: 'ui', port: 8443 }]);
  t.same(idx.service('redis', 'db1')?.ports, [{ name: 'redis', port: 12000 }]);
  t.same(idx.service('redis', 'db1-headless')?.ports, [{ name: 'redis', port: 12000 }]);
  t.same(idx.service('redis', 'db2')?.ports, [{ name: 'redis', port: 6379 }], 'databaseServicePort first');
  t.same(idx.service('redis', 'db3')?.ports, [], 'no port: predicted with unknown port');
  t.same(idx.service('redis', 'db4')?.ports, [], 'malformed ports: unknown');
  t.equal(idx.service('redis', 'db5')?.predictedBy, 'RedisEnterpriseDatabase "db5"', 'no spec at all');
  t.equal(idx.size('RedisEnterpriseDatabase'), 5);
  t.same(idx.serviceNames('redis'), [
    'db1',
    'db1-headless',
    'db2',
    'db2-headless',
    'db3',
    'db3-headless',
    'db4',
    'db4-headless',
    'db5',
    'db5-headless',
    'rec',
    'rec-ui',
  ]);

  idx.upsert(svc('rec', [{ name: 'api', port: 9443 }, { name: 'cm', port: 8001 }]));
  t.same(idx.service('redis', 'rec'), { namespace: 'redis', name: 'rec', ports: [{ name: 'api', port: 9443 }, { name: 'cm', port: 8001 }] }, 'real wins');
  idx.remove('Service', 'redis', 'rec');
  t.equal(idx.service('redis', 'rec')?.predictedBy, 'RedisEnterpriseCluster "rec"', 'prediction back once the real one is gone');

  // A REDB whose port changes: the prediction follows.
  idx.upsert(redb('db1', { databasePort: 12000, databaseServicePort: 7000 }));
  t.same(idx.service('redis', 'db1')?.ports, [{ name: 'redis', port: 7000 }]);
  t.equal(idx.size('RedisEnterpriseDatabase'), 5);

  // Two sources predicting one name: a REDB called "rec-ui" beside the REC. Removing one keeps the other.
  idx.upsert(redb('rec-ui', { databasePort: 13000 }));
  t.equal(idx.service('redis', 'rec-ui')?.predictedBy, 'RedisEnterpriseCluster "rec"', 'the REC first');
  idx.delete(rec());
  t.equal(idx.service('redis', 'rec'), undefined);
  t.equal(idx.service('redis', 'rec-ui')?.predictedBy, 'RedisEnterpriseDatabase "rec-ui"');
  idx.delete(redb('rec-ui'));
  t.equal(idx.service('redis', 'rec-ui'), undefined);
  t.same(idx.keys('RedisEnterpriseDatabase', 'redis').map(([, n]) => n).sort(), ['db1', 'db2', 'db3', 'db4', 'db5']);
  t.same(idx.keys('RedisEnterpriseCluster'), []);
});

t.test('cross-namespace lookups and namespaces', async (t) => {
  const idx = new ClusterIndex();
  idx.upsert(rec({ method: 'istio' }, { namespace: 'redis' }));
  idx.upsert(svc('rec', [{ port: 9443 }], 'other'));
  idx.upsert({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'team', annotations: { 'redis-istio-guard.io/skip-rules': 'vs-gateway-exists', 'kubectl.kubernetes.io/last-applied-configuration': '{}', 'redis-istio-guard.io/x': 5 } },
  });
  t.same(idx.serviceNamespaces('rec'), ['other', 'redis']);
  t.same(idx.serviceNamespaces('nope'), []);
  t.same(idx.namespace('team'), { name: 'team', annotations: { 'redis-istio-guard.io/skip-rules': 'vs-gateway-exists' } }, 'only our string annotations');
  t.equal(idx.namespace('redis'), undefined);
  t.ok(idx.hasNamespace('team'));
  t.ok(idx.hasNamespace('redis'), 'a REC there');
  t.ok(idx.hasNamespace('other'), 'a Service there');
  t.notOk(idx.hasNamespace('com'));
  t.same(idx.keys('Namespace'), [['', 'team']]);
  t.ok(idx.delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } }));
  t.equal(idx.namespace('team'), undefined);
  idx.upsert({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'plain', annotations: 'junk' } });
  t.same(idx.namespace('plain')?.annotations, {});
});

t.test('gateways: hosts from every server, malformed servers', async (t) => {
  const idx = new ClusterIndex();
  idx.upsert(gateway(undefined, { servers: [{ hosts: ['a.example.com', 7] }, null, { hosts: 'b' }, { hosts: ['*.redis.example.com'] }] }));
  idx.upsert({ apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'bare', namespace: 'istio-system' } });
  t.same(idx.gateway('istio-system', 'redis-gateway'), { namespace: 'istio-system', name: 'redis-gateway', hosts: ['a.example.com', '*.redis.example.com'] });
  t.same(idx.gateway('istio-system', 'bare')?.hosts, []);
  t.same(idx.gatewayNames('istio-system'), ['bare', 'redis-gateway']);
  t.equal(idx.gateway('redis', 'redis-gateway'), undefined);
  t.ok(idx.remove('Gateway', 'istio-system', 'bare'));
  t.same(idx.keys('Gateway'), [['istio-system', 'redis-gateway']]);
});

t.test('completeness', async (t) => {
  const seen = new ClusterIndex();
  t.notOk(seen.complete('Service', 'redis'));
  t.equal(seen.incompleteReason('Service', 'redis'), 'no Service in namespace "redis" among the given objects');
  seen.upsert(redb('db1'));
  t.ok(seen.complete('Service', 'redis'), 'a REDB makes the namespace known for Services');
  t.notOk(seen.complete('Gateway', 'redis'));
  t.equal(seen.incompleteReason('Service', 'redis'), '');
  t.equal(seen.onCacheMiss, 'allow');

  const all = new ClusterIndex({ completeness: alwaysComplete, onCacheMiss: 'deny' });
  t.ok(all.complete('Gateway', 'anywhere'));
  t.equal(all.onCacheMiss, 'deny');

  const broken = new ClusterIndex({
    completeness: () => {
      throw new Error('boom');
    },
  });
  t.notOk(broken.complete('Service', 'x'), 'a throwing completeness means incomplete');
  t.match(broken.incompleteReason('Service', 'x'), /boom/);
  broken.setCompleteness(completeWhereSeen);
  t.notOk(broken.complete('Service', 'x'));
});

t.test('clear and counts', async (t) => {
  const idx = new ClusterIndex();
  idx.upsert(svc('a', []));
  idx.upsert(rec());
  idx.upsert(gateway(['a.example.com']));
  idx.clear();
  for (const k of ['Service', 'Gateway', 'RedisEnterpriseCluster', 'RedisEnterpriseDatabase', 'Namespace'] as const) t.equal(idx.size(k), 0, k);
  t.equal(idx.service('redis', 'rec'), undefined);
});
