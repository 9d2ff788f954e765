/**
 * End-to-end for the cluster-aware checks: `serve` with its informers pointed at a real
 * kube-apiserver (through a ServiceAccount token with only the README's permissions), registered
 * as a URL webhook, and driven with the built kubectl.
 *
 * Covered: readiness false until every informer has synced (first forbidden, then allowed by
 * RBAC); a VirtualService refused because its Service is missing, then accepted once the Service
 * exists; a Service port change followed; a delete followed; a REDB's predicted Service; Gateway
 * references and IST0132; the namespace off-switch annotation; metrics; and the sync time of a
 * cache over many Services (RIG_CLUSTER_SCALE, default 2000).
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { defaultServeSettings } from '../../src/config.ts';
import { ClusterCache, kubeTransport } from '../../src/cluster/informers.ts';
import { startServer } from '../../src/server/serve.ts';
import { startControlPlane, type ExecResult } from '../harness/controlplane.ts';
import { VALIDATING_WEBHOOK, validatingWebhookConfiguration } from '../harness/webhook-config.ts';
import { get } from '../helpers/review.ts';

// A first run may build kube-apiserver, kubectl and etcd from source.
t.setTimeout(30 * 60 * 1000);

const NS = 'redis';
const SA_NS = 'rig-system';
const SA = 'redis-istio-guard';
const DENIED = `admission webhook "${VALIDATING_WEBHOOK}" denied the request:`;
const D = 'spec.tls[0].route[0].destination';

const show = (r: ExecResult) => `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await cond()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(20);
  }
}

/** The exact permissions the README lists: list and watch, nothing else. */
const CLUSTER_ROLE = {
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRole',
  metadata: { name: 'redis-istio-guard-cache' },
  rules: [
    { apiGroups: [''], resources: ['services', 'namespaces'], verbs: ['list', 'watch'] },
    { apiGroups: ['networking.istio.io'], resources: ['gateways'], verbs: ['list', 'watch'] },
    { apiGroups: ['app.redislabs.com'], resources: ['redisenterpriseclusters', 'redisenterprisedatabases'], verbs: ['list', 'watch'] },
  ],
};

const virtualService = (name: string, host: string, port: number | undefined, gateways: string[] = ['mesh'], extra: Record<string, unknown> = {}) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace: NS, ...extra },
  spec: {
    hosts: ['*.redis.example.com'],
    gateways,
    tls: [
      {
        match: [{ port: 443, sniHosts: [`${name}.redis.example.com`] }],
        route: [{ destination: { host, ...(port !== undefined ? { port: { number: port } } : {}) } }],
      },
    ],
  },
});

const serviceObj = (name: string, port: number) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: NS },
  spec: { ports: [{ name: 'redis', port, targetPort: port }], selector: { app: name } },
});

// ---- control plane, service account, webhook server ----

const fileStarted = Date.now();
const cp = await startControlPlane();
t.teardown(() => cp.stop());
t.comment(`control plane up in ${((Date.now() - fileStarted) / 1000).toFixed(1)} s`);

const apply = (obj: unknown, args: string[] = []) => cp.kubectl(['apply', ...args, '-f', '-'], { input: JSON.stringify(obj) });

for (const ns of [NS, 'istio-system', SA_NS]) await cp.applyYaml(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }));
await cp.applyYaml(JSON.stringify({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: SA, namespace: SA_NS } }));
const token = await cp.kubectl(['create', 'token', SA, '-n', SA_NS, '--duration=2h']);
if (token.code !== 0) throw new Error(`kubectl create token failed:\n${show(token)}`);

const dir = mkdtempSync(join(tmpdir(), 'rig-cluster-e2e-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const saKubeconfig = join(dir, 'kubeconfig');
writeFileSync(
  saKubeconfig,
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'rig', cluster: { server: cp.url, 'certificate-authority-data': Buffer.from(cp.caPem).toString('base64') } }],
    users: [{ name: SA, user: { token: token.stdout.trim() } }],
    contexts: [{ name: 'rig', context: { cluster: 'rig', user: SA } }],
    'current-context': 'rig',
  }),
  { mode: 0o600 },
);

const log: Record<string, any>[] = [];
const logger = pino(
  { level: 'info' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) log.push(JSON.parse(line) as Record<string, any>);
      done();
    },
  }),
);

const serverStarted = Date.now();
const s = await startServer(
  { ...defaultServeSettings, port: 0, host: '127.0.0.1', selfSigned: true, shutdownDelaySeconds: 0, clusterChecks: 'on', kubeconfig: saKubeconfig },
  // Shorter than the defaults (1 s to 60 s backoff, absent APIs looked for every 60 s) to keep the test quick.
  { logger, clusterTimings: { backoffInitialMs: 250, backoffMaxMs: 1000, absentRecheckMs: 1000 } },
);
t.teardown(() => s.shutdown('test end'));
const cache = s.cluster;
if (!cache) throw new Error('cluster checks did not start');
const index = cache.index;

const readyz = () => get(s.url, s.certificate, '/readyz');

t.test('not ready while the informers may not list; ready once RBAC allows it', async (t) => {
  await until(async () => JSON.stringify((await readyz()).body).includes('HTTP 403'), 'a 403 in the readiness reasons');
  const r = await readyz();
  t.equal(r.status, 503);
  t.match(r.body.reasons.join('\n'), /Service cache: first list not finished \(last error: HTTP 403: services is forbidden: User "system:serviceaccount:rig-system:redis-istio-guard" cannot list resource "services"/);
  t.notOk(index.complete('Service', NS));

  const granted = Date.now();
  await cp.applyYaml(JSON.stringify(CLUSTER_ROLE));
  await cp.applyYaml(
    JSON.stringify({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'redis-istio-guard-cache' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'redis-istio-guard-cache' },
      subjects: [{ kind: 'ServiceAccount', name: SA, namespace: SA_NS }],
    }),
  );
  await until(async () => (await readyz()).status === 200, 'ready after the binding', 60_000);
  t.comment(`ready ${Date.now() - granted} ms after the ClusterRoleBinding (retry backoff up to 1 s); server started ${Date.now() - serverStarted} ms ago`);
  t.ok(index.complete('Service', NS));
  t.ok(index.complete('Gateway', 'istio-system'));
  // Namespaces are optional: forbidden counted as absent (ready without them), looked for again.
  await until(() => cache.status().every((r) => !r.absent), 'Namespaces listed on the next look');
  const status = cache.status();
  t.ok(status.every((r) => r.synced && !r.absent), JSON.stringify(status.map((r) => [r.kind, r.version, r.absent])));
  t.same(
    Object.fromEntries(status.map((r) => [r.kind, r.version])),
    { Service: 'v1', Gateway: 'v1', RedisEnterpriseCluster: 'v1', RedisEnterpriseDatabase: 'v1alpha1', Namespace: 'v1' },
  );
  t.ok(log.some((l) => l.msg === 'cluster cache synced'), 'sync logged');
});

t.test('register the webhook', async (t) => {
  await cp.applyYaml(JSON.stringify(validatingWebhookConfiguration({ url: s.url, caPem: s.certificate, failurePolicy: 'Fail' })));
  const probe = virtualService('probe', 'probe-missing', 1);
  await cp.waitForWebhook(async () => {
    const res = await cp.request('POST', `/apis/networking.istio.io/v1/namespaces/${NS}/virtualservices?dryRun=All`, probe);
    return res.status === 403 && String(res.body?.message).includes('Service "probe-missing" not found');
  }, 30_000);
  t.pass('active');
});

t.test('a VirtualService is refused while its Service is missing, and accepted once it exists', async (t) => {
  const refused = await apply(virtualService('db1', 'db1', 12000));
  t.equal(refused.code, 1, show(refused));
  t.match(
    refused.stderr,
    `${DENIED} ${D}.host: Invalid value: "db1": Service "db1" not found in namespace "redis": traffic routed to it goes nowhere (istioctl analyze: IST0101); fix the host, or create the Service first`,
  );
  t.equal((await cp.kubectl(['get', 'virtualservice.networking.istio.io', 'db1', '-n', NS])).code, 1, 'not stored');

  const created = Date.now();
  const svc = await apply(serviceObj('db1', 12000));
  t.equal(svc.code, 0, show(svc));
  const lag = await until(() => index.service(NS, 'db1') !== undefined, 'the cache has db1');
  t.comment(`Service created → in the cache: ${Date.now() - created} ms (after kubectl returned: ${lag} ms)`);

  const accepted = await apply(virtualService('db1', 'db1', 12000));
  t.equal(accepted.code, 0, show(accepted));
  t.match(accepted.stdout, 'virtualservice.networking.istio.io/db1 created');
  t.notMatch(accepted.stderr, 'Warning', 'no warning');
});

t.test('a Service port change is followed', async (t) => {
  const changed = await apply(serviceObj('db1', 6379));
  t.equal(changed.code, 0, show(changed));
  await until(() => index.service(NS, 'db1')?.ports[0]?.port === 6379, 'the new port in the cache');

  const refused = await apply(virtualService('db1-second', 'db1', 12000));
  t.equal(refused.code, 1, show(refused));
  t.match(
    refused.stderr,
    `${DENIED} ${D}.port.number: Invalid value: 12000: Service "db1" in namespace "redis" has no port 12000, so traffic routed to it goes nowhere (istioctl analyze: IST0101 host:port); its ports: 6379 (redis); use 6379`,
  );

  // The stored VirtualService is now wrong too; a relabel is still allowed (ratcheting), with the warning.
  const relabel = await apply(virtualService('db1', 'db1', 12000, ['mesh'], { labels: { team: 'data' } }));
  t.equal(relabel.code, 0, show(relabel));
  t.match(relabel.stderr, /Warning: .*has no port 12000.*\(allowed: unchanged in this update\)/);

  const fixed = await apply(virtualService('db1', 'db1', 6379));
  t.equal(fixed.code, 0, show(fixed));
  t.match(fixed.stdout, 'virtualservice.networking.istio.io/db1 configured');
});

t.test('a delete is followed', async (t) => {
  const del = await cp.kubectl(['delete', 'service', 'db1', '-n', NS]);
  t.equal(del.code, 0, show(del));
  await until(() => index.service(NS, 'db1') === undefined, 'db1 gone from the cache');
  const refused = await apply(virtualService('db1-third', 'db1', 6379), ['--dry-run=server']);
  t.equal(refused.code, 1, show(refused));
  t.match(refused.stderr, `${DENIED} ${D}.host: Invalid value: "db1": Service "db1" not found in namespace "redis"`);
});

t.test('a REDB counts: its Services are predicted, with a warning', async (t) => {
  const redb = await apply({
    apiVersion: 'app.redislabs.com/v1alpha1',
    kind: 'RedisEnterpriseDatabase',
    metadata: { name: 'db2', namespace: NS },
    spec: { redisEnterpriseCluster: { name: 'rec' }, memorySize: '100MB', tlsMode: 'enabled', databasePort: 12000 },
  });
  t.equal(redb.code, 0, show(redb));
  await until(() => index.service(NS, 'db2')?.predictedBy !== undefined, 'db2 predicted');
  const res = await apply(virtualService('db2', 'db2', 12000));
  t.equal(res.code, 0, show(res));
  t.match(
    res.stderr,
    `Warning: ${D}.host: Invalid value: "db2": Service "db2" does not exist yet in namespace "redis"; the Redis Enterprise operator creates it for RedisEnterpriseDatabase "db2", so it counts as existing`,
  );
  const typo = await apply(virtualService('db3', 'db3', 12000), ['--dry-run=server']);
  t.equal(typo.code, 1);
  t.match(typo.stderr, /Service "db3" not found in namespace "redis".*did you mean "db2"/);
});

t.test('Gateway references: missing (warning), then present, then IST0132', async (t) => {
  const vs = virtualService('gw-check', 'db2', 12000, ['istio-system/redis-gateway']);
  const missing = await apply(vs, ['--dry-run=server']);
  t.equal(missing.code, 0, show(missing));
  t.match(missing.stderr, 'Warning: spec.gateways[0]: Invalid value: "istio-system/redis-gateway": Gateway "redis-gateway" not found in namespace "istio-system" (istioctl analyze: IST0101)');

  const gw = (hosts: string[]) => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name: 'redis-gateway', namespace: 'istio-system' },
    spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 443, name: 'tls', protocol: 'TLS' }, tls: { mode: 'PASSTHROUGH' }, hosts }] },
  });
  t.equal((await apply(gw(['*.other.example.com']))).code, 0);
  await until(() => index.gateway('istio-system', 'redis-gateway') !== undefined, 'Gateway in the cache');
  const wrongHosts = await apply(vs, ['--dry-run=server']);
  t.equal(wrongHosts.code, 0, show(wrongHosts));
  t.match(wrongHosts.stderr, /Warning: spec\.gateways\[0\]: .*none of the VirtualService hosts \[\*\.redis\.example\.com\] is served by Gateway istio-system\/redis-gateway, which serves \[\*\.other\.example\.com\] \(istioctl analyze: IST0132\)/);

  t.equal((await apply(gw(['*.redis.example.com']))).code, 0);
  await until(() => index.gateway('istio-system', 'redis-gateway')?.hosts[0] === '*.redis.example.com', 'Gateway hosts updated');
  const clean = await apply(vs, ['--dry-run=server']);
  t.equal(clean.code, 0, show(clean));
  t.notMatch(clean.stderr, /spec\.gateways/, 'no Gateway warning once it serves the host');
});

t.test('the namespace annotation switches a rule off, and says so', async (t) => {
  const annotate = await cp.kubectl(['annotate', 'namespace', NS, 'redis-istio-guard.io/skip-rules=vs-destination-service']);
  t.equal(annotate.code, 0, show(annotate));
  await until(() => index.namespace(NS)?.annotations['redis-istio-guard.io/skip-rules'] === 'vs-destination-service', 'annotation in the cache');
  const res = await apply(virtualService('nothere', 'nothere', 1), ['--dry-run=server']);
  t.equal(res.code, 0, show(res));
  t.match(res.stderr, 'Warning: rule vs-destination-service not checked: switched off by the annotation redis-istio-guard.io/skip-rules on namespace "redis"');

  t.equal((await cp.kubectl(['annotate', 'namespace', NS, 'redis-istio-guard.io/skip-rules-'])).code, 0);
  await until(() => index.namespace(NS)?.annotations['redis-istio-guard.io/skip-rules'] === undefined, 'annotation removed');
  t.equal((await apply(virtualService('nothere', 'nothere', 1), ['--dry-run=server'])).code, 1, 'checked again');
});

t.test('metrics and admission latency', async (t) => {
  const m = await get(s.url, s.certificate, '/metrics');
  for (const kind of ['Service', 'Gateway', 'RedisEnterpriseCluster', 'RedisEnterpriseDatabase', 'Namespace'])
    t.match(m.text, new RegExp(`redis_istio_guard_cache_synced\\{kind="${kind}",namespace="\\*"\\} 1`), kind);
  t.match(m.text, /redis_istio_guard_cache_restarts_total\{kind="Service",namespace="\*",reason="error"\} [1-9]/, 'the forbidden lists were counted');
  t.match(m.text, /redis_istio_guard_cache_age_seconds\{kind="Service",namespace="\*"\} /);
  t.match(m.text, /redis_istio_guard_cache_objects\{kind="RedisEnterpriseDatabase"\} 1/);
  const durations = log.filter((l) => l.msg === 'admission' && typeof l.durationMs === 'number').map((l) => l.durationMs as number);
  t.ok(durations.length > 5);
  t.comment(`admission handler durations (ms): max ${Math.max(...durations).toFixed(2)}, median ${durations.sort((a, b) => a - b)[Math.floor(durations.length / 2)]?.toFixed(2)}`);
});

t.test('sync time over many Services', async (t) => {
  const n = Number(process.env.RIG_CLUSTER_SCALE ?? 2000);
  const namespaces = Math.max(1, Math.ceil(n / 1000));
  for (let i = 0; i < namespaces; i++) await cp.applyYaml(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `scale-${i}` } }));
  const createStarted = Date.now();
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      const res = await cp.request('POST', `/api/v1/namespaces/scale-${i % namespaces}/services`, {
        apiVersion: 'v1',
        kind: 'Service',
        // Headless: the test apiserver's ClusterIP range holds 254 addresses.
        metadata: { name: `svc-${i}`, labels: { app: `app-${i}` } },
        spec: { clusterIP: 'None', selector: { app: `app-${i}` }, ports: [{ name: 'http', port: 80 + (i % 3), targetPort: 8080 }] },
      });
      if (res.status !== 201) throw new Error(`creating svc-${i}: ${res.status} ${JSON.stringify(res.body)}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  t.comment(`created ${n} Services in ${((Date.now() - createStarted) / 1000).toFixed(1)} s`);
  await until(() => index.size('Service') >= n, 'the running cache follows the creates', 10 * 60_000);

  // A fresh cache, as at start: time to the end of the first list of everything.
  const kc = new KubeConfig();
  kc.loadFromFile(saKubeconfig);
  const fresh = new ClusterCache({ transport: kubeTransport(kc) });
  t.teardown(() => fresh.stop());
  const started = Date.now();
  fresh.start();
  await fresh.synced();
  const ms = Date.now() - started;
  t.ok(fresh.index.size('Service') >= n);
  t.comment(
    `fresh cache synced ${fresh.index.size('Service')} Services in ${ms} ms ` +
      `(Service reflector ${fresh.status().find((r) => r.kind === 'Service')?.firstSyncMs} ms, pages of 500)`,
  );
});
