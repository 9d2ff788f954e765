/**
 * Smoke test of the real control plane (etcd + kube-apiserver + kubectl built from test/harness/kube):
 * CRDs install, Istio and Redis Enterprise objects are accepted, and a URL webhook on 127.0.0.1
 * is called by the apiserver and its denial reaches kubectl.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { generate } from 'selfsigned';
import { ensureKubeTools, pinnedKubeVersion, startControlPlane } from '../harness/controlplane.ts';

// A cold build of kube-apiserver, kubectl and etcd takes minutes; the start itself takes seconds.
t.setTimeout(60 * 60_000);

const NS = 'redis';
const WEBHOOK = 'deny-all.test.redis-istio-guard.io';
const DENY_MESSAGE = 'rig deny-all webhook says no';

const gateway = (name: string, host: string) => `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: ${name}
  namespace: ${NS}
spec:
  selector:
    istio: ingressgateway
  servers:
    - port:
        number: 443
        name: https
        protocol: HTTPS
      hosts:
        - "${host}"
      tls:
        mode: PASSTHROUGH
`;

const builtStarted = Date.now();
await ensureKubeTools();
t.comment(`kube tools ready in ${((Date.now() - builtStarted) / 1000).toFixed(1)} s`);

const started = Date.now();
const cp = await startControlPlane();
t.teardown(() => cp.stop());
const { etcdMs, apiserverMs, crdsMs } = cp.timings;
t.comment(
  `control plane up in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
    `(etcd ${etcdMs} ms, apiserver to /readyz ${apiserverMs} ms, CRDs established ${crdsMs} ms)`,
);

t.test('kubectl talks to the apiserver', async (t) => {
  const res = await cp.kubectl(['version', '-o', 'json']);
  t.equal(res.code, 0, res.stderr);
  const want = pinnedKubeVersion();
  t.match(JSON.parse(res.stdout), { clientVersion: { gitVersion: want }, serverVersion: { gitVersion: want } });
  const v = await cp.request('GET', '/version');
  t.equal(v.status, 200);
  t.match(v.body, { major: '1', minor: want.split('.')[1], gitVersion: want });
  t.match(cp.url, /^https:\/\/127\.0\.0\.1:\d+$/);
});

t.test('Istio and Redis Enterprise CRDs are established', async (t) => {
  const res = await cp.kubectl(['get', 'crd', '-o', 'name']);
  t.equal(res.code, 0, res.stderr);
  for (const crd of [
    'gateways.networking.istio.io',
    'virtualservices.networking.istio.io',
    'destinationrules.networking.istio.io',
    'redisenterpriseclusters.app.redislabs.com',
    'redisenterprisedatabases.app.redislabs.com',
  ]) {
    t.match(res.stdout, `customresourcedefinition.apiextensions.k8s.io/${crd}`);
  }
});

t.test('namespace, Gateway and RedisEnterpriseCluster are accepted', async (t) => {
  await cp.applyYaml(`apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${NS}\n`);
  await cp.applyYaml(gateway('rec-api', 'api.redis.example.com'));
  await cp.applyYaml(`
apiVersion: app.redislabs.com/v1
kind: RedisEnterpriseCluster
metadata:
  name: rec
  namespace: ${NS}
spec:
  nodes: 3
  ingressOrRouteSpec:
    method: istio
    apiFqdnUrl: api.redis.example.com
    dbFqdnSuffix: .redis.example.com
`);
  const gw = await cp.request('GET', `/apis/networking.istio.io/v1/namespaces/${NS}/gateways/rec-api`);
  t.equal(gw.status, 200);
  t.same(gw.body.spec.servers[0].hosts, ['api.redis.example.com']);
  const rec = await cp.kubectl(['get', 'redisenterprisecluster', 'rec', '-n', NS, '-o', 'json']);
  t.equal(rec.code, 0, rec.stderr);
  t.match(JSON.parse(rec.stdout), { spec: { nodes: 3, ingressOrRouteSpec: { method: 'istio' } } });
  // The CRD's schema is enforced: an unknown method is rejected by the apiserver.
  const bad = await cp.request('POST', `/apis/app.redislabs.com/v1/namespaces/${NS}/redisenterpriseclusters?dryRun=All`, {
    apiVersion: 'app.redislabs.com/v1',
    kind: 'RedisEnterpriseCluster',
    metadata: { name: 'bad' },
    spec: { nodes: 3, ingressOrRouteSpec: { method: 'nope', apiFqdnUrl: 'a', dbFqdnSuffix: '.b' } },
  });
  t.equal(bad.status, 422, 'method outside the CRD enum is rejected');
  t.match(bad.body?.message, 'spec.ingressOrRouteSpec.method: Unsupported value');
});

t.test('@kubernetes/client-node works with the kubeconfig', async (t) => {
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfig);
  const ns = await kc.makeApiClient(CoreV1Api).readNamespace({ name: NS });
  t.equal(ns.metadata?.name, NS);
  const rec = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
    group: 'app.redislabs.com',
    version: 'v1',
    namespace: NS,
    plural: 'redisenterpriseclusters',
    name: 'rec',
  })) as { spec?: { nodes?: number } };
  t.equal(rec.spec?.nodes, 3);
});

t.test('a URL webhook on 127.0.0.1 is called and its denial reaches kubectl', async (t) => {
  const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
    ],
  });
  const reviews: any[] = [];
  const server: Server = createServer({ key: pems.private, cert: pems.cert }, (req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => {
      const review = JSON.parse(text);
      reviews.push(review);
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: { uid: review.request.uid, allowed: false, status: { code: 403, message: DENY_MESSAGE } },
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const { port } = server.address() as AddressInfo;

  await cp.applyYaml(
    JSON.stringify({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name: 'deny-all' },
      webhooks: [
        {
          name: WEBHOOK,
          clientConfig: { url: `https://127.0.0.1:${port}/validate`, caBundle: Buffer.from(pems.cert).toString('base64') },
          rules: [
            { apiGroups: ['networking.istio.io'], apiVersions: ['*'], operations: ['CREATE'], resources: ['gateways'] },
          ],
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          failurePolicy: 'Fail',
          timeoutSeconds: 5,
        },
      ],
    }),
  );

  // Configurations reach the admission chain through an informer: probe with dry-run creates.
  const probeGateway = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name: 'probe', namespace: NS },
    spec: {
      selector: { istio: 'ingressgateway' },
      servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['probe.example.com'] }],
    },
  };
  const activeStarted = Date.now();
  const gatewaysPath = `/apis/networking.istio.io/v1/namespaces/${NS}/gateways`;
  await cp.waitForWebhook(async () => {
    const res = await cp.request('POST', `${gatewaysPath}?dryRun=All`, probeGateway);
    return res.status === 403 && String(res.body?.message).includes(`admission webhook "${WEBHOOK}" denied`);
  }, 30_000);
  t.comment(`webhook active after ${Date.now() - activeStarted} ms`);

  const res = await cp.kubectl(['apply', '-f', '-'], { input: gateway('rec-db', '*.redis.example.com') });
  t.equal(res.code, 1, `kubectl apply exit code (stdout: ${res.stdout})`);
  t.match(res.stderr, `admission webhook "${WEBHOOK}" denied the request: ${DENY_MESSAGE}`);

  const last = reviews.at(-1);
  t.match(last, {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { operation: 'CREATE', kind: { group: 'networking.istio.io', kind: 'Gateway' }, name: 'rec-db', namespace: NS },
  });
  const get = await cp.kubectl(['get', 'gateway.networking.istio.io', 'rec-db', '-n', NS]);
  t.equal(get.code, 1, 'denied Gateway was not stored');
  t.match(get.stderr, /NotFound|not found/);
});

t.test('stop() kills etcd and the apiserver and removes the temp dir', async (t) => {
  await cp.stop();
  await cp.stop(); // idempotent
  for (const pid of cp.pids) {
    t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `pid ${pid} is gone`);
  }
  t.notOk(existsSync(cp.dir), 'temp dir removed');
});
