/**
 * The selfSigned certificate manager (src/certs) against a real kube-apiserver:
 *  - the first start creates the Secret and patches the caBundle of the webhook configurations;
 *  - replicas starting together agree on one CA (optimistic create, read back);
 *  - an unusable Secret is replaced; the Helm-made Secret is adopted as is;
 *  - CA and serving-certificate rotations keep admission requests succeeding: two replicas, each
 *    serving what its manager hands it, answer a real webhook (failurePolicy Fail) while their
 *    certificates, with lifetimes of seconds, are renewed and their CA rotated more than once.
 * The webhook configurations come from `helm template` with the Service swapped for a local URL.
 */
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { CertManager, decode, type CertState } from '../../src/certs/manager.ts';
import { splitPem, type Pem } from '../../src/certs/pki.ts';
import { startControlPlane } from '../harness/controlplane.ts';
import { ensureHelm, helmTemplate, NAMESPACE, webhookConfigurationsForUrl } from '../harness/helm/helm.ts';

t.setTimeout(30 * 60_000);

const helm = await ensureHelm();
t.teardown(() => helm.cleanup());
const cp = await startControlPlane();
t.teardown(() => cp.stop());
const kc = new KubeConfig();
kc.loadFromFile(cp.kubeconfig);

for (const ns of [NAMESPACE, 'apps']) {
  const res = await cp.kubectl(['create', 'namespace', ns]);
  if (res.code !== 0) throw new Error(res.stderr);
}

const VWC = 'rig-redis-istio-guard';
const LOCAL_NAMES = ['localhost', '127.0.0.1'];
const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;
const caFingerprints = (bundle: string) => splitPem(bundle).map(fingerprint);

async function secretState(name: string): Promise<CertState | null> {
  const res = await cp.request('GET', `/api/v1/namespaces/${NAMESPACE}/secrets/${name}`);
  return res.status === 200 ? decode(res.body) : null;
}

async function caBundles(): Promise<string[]> {
  const res = await cp.request('GET', `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${VWC}`);
  return (res.body.webhooks as { clientConfig: { caBundle?: string } }[]).map((w) =>
    Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString(),
  );
}

const manager = (secretName: string, extra: Partial<ConstructorParameters<typeof CertManager>[0]> = {}) =>
  new CertManager({
    kubeConfig: kc,
    namespace: NAMESPACE,
    secretName,
    names: LOCAL_NAMES,
    validatingWebhookConfigurations: [VWC],
    mutatingWebhookConfigurations: ['not-installed'],
    ...extra,
  });

/** An allow-all admission webhook on 127.0.0.1 whose certificate can be swapped. */
async function webhookServer(pair: Pem): Promise<{ server: Server; port: number; hits: () => number }> {
  let hits = 0;
  const server = createServer({ key: pair.key, cert: pair.cert }, (req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      hits++;
      const review = JSON.parse(body) as { request: { uid: string } };
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true } }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { server, port: (server.address() as AddressInfo).port, hits: () => hits };
}

const gateway = (name: string) => `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: ${name}
  namespace: apps
spec:
  selector:
    istio: ingressgateway
  servers:
    - port: {number: 443, name: https, protocol: HTTPS}
      hosts: ["db.example.com"]
      tls: {mode: PASSTHROUGH}
`;

// The chart's ValidatingWebhookConfiguration, pointed at a placeholder until servers run.
const rendered = await helmTemplate(helm, {});
const [vwcTemplate] = webhookConfigurationsForUrl(rendered, 'https://127.0.0.1:1');
if (!vwcTemplate) throw new Error('chart rendered no ValidatingWebhookConfiguration');
{
  const res = await cp.kubectl(['apply', '-f', '-'], { input: stringify(vwcTemplate) });
  if (res.code !== 0) throw new Error(res.stderr);
}

t.test('first start creates the Secret and patches the caBundle', async (t) => {
  const pairs: Pem[] = [];
  const m = manager('first-start', { onServingPair: (p) => pairs.push(p) });
  const state = await m.reconcile();
  const stored = await secretState('first-start');
  t.ok(stored, 'Secret created and usable');
  t.equal(stored!.signer.cert, state.signer.cert);
  t.equal(stored!.bundle, state.signer.cert, 'bundle is the one CA');
  const leaf = new X509Certificate(state.serving.cert);
  t.ok(leaf.verify(new X509Certificate(state.signer.cert).publicKey), 'serving cert signed by the CA');
  t.ok(leaf.checkHost('localhost') && leaf.checkIP('127.0.0.1'), 'valid for the configured names');
  t.same(await caBundles(), [state.bundle], 'caBundle published');
  t.equal(pairs.length, 1, 'serving pair handed over once');

  // A second pass changes nothing and hands over nothing new.
  const again = await m.reconcile();
  t.equal(again.resourceVersion, state.resourceVersion, 'no write when nothing is due');
  t.equal(pairs.length, 1);
});

t.test('replicas starting together agree on one CA', async (t) => {
  for (let round = 0; round < 3; round++) {
    const name = `race-${round}`;
    const states = await Promise.all([0, 1, 2, 3].map(() => manager(name).reconcile()));
    const cas = new Set(states.map((s) => fingerprint(s.signer.cert)));
    const leaves = new Set(states.map((s) => fingerprint(s.serving.cert)));
    t.equal(cas.size, 1, `round ${round}: one CA among 4 replicas`);
    t.equal(leaves.size, 1, `round ${round}: one serving certificate`);
    t.equal(fingerprint((await secretState(name))!.signer.cert), [...cas][0], 'the stored CA');
  }
  t.same(caFingerprints((await caBundles())[0]!), caFingerprints((await secretState('race-2'))!.bundle), 'caBundle from the last race');
});

t.test('an unusable Secret is replaced; the Helm-made one is adopted', async (t) => {
  const broken = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'broken', namespace: NAMESPACE },
    type: 'Opaque',
    data: { 'tls.crt': Buffer.from('not a certificate').toString('base64') },
  };
  t.equal((await cp.kubectl(['apply', '-f', '-'], { input: stringify(broken) })).code, 0);
  const state = await manager('broken').reconcile();
  t.ok(await secretState('broken'), 'now usable');
  t.equal(state.bundle, state.signer.cert);

  // The chart's Secret (selfSigned mode), under the same name the chart gives it.
  const secret = rendered.one('Secret');
  t.equal((await cp.kubectl(['apply', '-f', '-'], { input: stringify(secret) })).code, 0);
  const adopted = await manager(secret.metadata.name, { names: ['rig-redis-istio-guard.rig-system.svc'] }).reconcile();
  t.equal(adopted.signer.cert.trim(), Buffer.from(secret.data['signer.crt'], 'base64').toString().trim(), 'Helm CA kept');
  t.equal(adopted.serving.cert.trim(), Buffer.from(secret.data['tls.crt'], 'base64').toString().trim(), 'Helm serving cert kept');
});

t.test('rotations keep admission requests succeeding', async (t) => {
  // Lifetimes of seconds: certificates are backdated 60 s, so a 40 s validity is a 100 s lifetime,
  // renewed with a third (33 s) left, i.e. 7 s after issue. The CA rotates in two steps 3 s apart.
  const secretName = 'rotating';
  const timing = { caValidityDays: 40 / 86_400, servingValidityDays: 40 / 86_400, propagationSeconds: 3, checkIntervalSeconds: 1 };
  const servers: { server: Server; port: number; hits: () => number }[] = [];
  const served: string[][] = [[], []];
  const bundleSizes = new Set<number>();
  const signers = new Set<string>();

  const managers = [0, 1].map((i) =>
    manager(secretName, {
      ...timing,
      onServingPair: (pair) => {
        served[i]!.push(fingerprint(pair.cert));
        servers[i]?.server.setSecureContext({ key: pair.key, cert: pair.cert });
      },
      onError: (err) => t.comment(`replica ${i} reconcile failed (retried): ${String(err)}`),
    }),
  );
  const first = await Promise.all(managers.map((m) => m.reconcile()));
  for (const s of first) servers.push(await webhookServer(s.serving));
  t.teardown(() => managers.forEach((m) => m.stop()));

  // Two webhooks in the chart's configuration, one per replica: every request must pass both.
  const base = structuredClone(vwcTemplate) as any;
  const webhook = base.webhooks[0];
  base.webhooks = servers.map((s, i) => ({
    ...structuredClone(webhook),
    name: `replica-${i}.validate.redis-istio-guard.io`,
    clientConfig: { url: `https://127.0.0.1:${s.port}/validate`, caBundle: Buffer.from(first[0]!.bundle).toString('base64') },
  }));
  t.equal((await cp.kubectl(['apply', '-f', '-'], { input: stringify(base) })).code, 0, 'webhooks registered');
  for (const m of managers) await m.start();

  let ok = 0;
  const failures: string[] = [];
  await cp.waitForWebhook(async () => {
    const res = await cp.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: gateway('probe') });
    return res.code === 0 && servers.every((s) => s.hits() > 0);
  });
  const until = Date.now() + 45_000;
  for (let i = 0; Date.now() < until; i++) {
    const res = await cp.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: gateway(`gw-${i}`) });
    if (res.code === 0) ok++;
    else failures.push(res.stderr.trim());
    const state = await secretState(secretName);
    if (state) {
      bundleSizes.add(splitPem(state.bundle).length);
      signers.add(fingerprint(state.signer.cert));
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  t.same(failures, [], `${ok} admission requests, none failed`);
  t.ok(ok > 50, `${ok} requests during the rotations`);
  t.ok(signers.size >= 2, `the CA rotated (${signers.size} signing CAs seen)`);
  t.ok(bundleSizes.has(2), 'old and new CA were in the bundle together');
  for (const [i, list] of served.entries()) t.ok(list.length >= 3, `replica ${i} swapped its certificate in memory ${list.length - 1} times`);
  t.ok(servers.every((s) => s.hits() > ok), 'both replicas answered every request');
});

t.test("the chart's RBAC is all the manager needs", async (t) => {
  // Install the chart's selfSigned rendering (no pods run here) and act as its ServiceAccount.
  const input = rendered.objects.map((o) => stringify(o)).join('---\n');
  const applied = await cp.kubectl(['apply', '-f', '-'], { input });
  t.equal(applied.code, 0, applied.stderr);
  const sa = rendered.one('ServiceAccount').metadata.name;
  const token = await cp.kubectl(['create', 'token', sa, '-n', NAMESPACE]);
  t.equal(token.code, 0, token.stderr);
  const saKc = new KubeConfig();
  saKc.loadFromOptions({
    clusters: [{ name: 'h', server: cp.url, caData: Buffer.from(cp.caPem).toString('base64') }],
    users: [{ name: sa, token: token.stdout.trim() }],
    contexts: [{ name: 'sa', cluster: 'h', user: sa }],
    currentContext: 'sa',
  });
  const env = Object.fromEntries(
    (rendered.one('Deployment').spec.template.spec.containers[0].env as { name: string; value?: string }[]).map((e) => [e.name, e.value]),
  );
  const m = new CertManager({
    kubeConfig: saKc,
    namespace: NAMESPACE,
    secretName: env.REDIS_ISTIO_GUARD_CERT_SECRET!,
    names: env.REDIS_ISTIO_GUARD_CERT_NAMES!.split(','),
    validatingWebhookConfigurations: [env.REDIS_ISTIO_GUARD_VALIDATING_WEBHOOK_CONFIGURATION!],
  });
  const adopted = await m.reconcile();
  t.equal(adopted.bundle.trim(), Buffer.from(rendered.one('Secret').data['ca.crt'], 'base64').toString().trim(), 'adopts the Helm Secret');

  // Lost Secret: re-created by the ServiceAccount, and the new CA published.
  t.equal((await cp.kubectl(['delete', 'secret', env.REDIS_ISTIO_GUARD_CERT_SECRET!, '-n', NAMESPACE])).code, 0);
  const recreated = await m.reconcile();
  t.not(fingerprint(recreated.signer.cert), fingerprint(adopted.signer.cert), 'a new CA');
  t.same(await caBundles(), [recreated.bundle], 'published with the ServiceAccount');

  // And it may not touch other Secrets or other webhook configurations.
  const other = new CertManager({ kubeConfig: saKc, namespace: NAMESPACE, secretName: 'someone-else', names: ['x'] });
  await t.rejects(other.read(), { code: 403 }, 'no access to other Secrets');
});

t.test('`serve` runs the manager and serves what it issues', async (t) => {
  const { startServer } = await import('../../src/server/serve.ts');
  const { defaultServeSettings } = await import('../../src/config.ts');
  const { pino } = await import('pino');
  const { connect } = await import('node:tls');
  const secretName = 'serve-managed';
  const server = await startServer(
    {
      ...defaultServeSettings,
      port: 0,
      host: '127.0.0.1',
      selfSigned: true,
      shutdownDelaySeconds: 0,
      clusterChecks: 'off',
      kubeconfig: cp.kubeconfig,
      certificates: { secretName, namespace: NAMESPACE, names: LOCAL_NAMES, validatingWebhookConfigurations: [VWC], mutatingWebhookConfigurations: [] },
    },
    { logger: pino({ level: 'silent' }) },
  );
  t.teardown(() => server.shutdown('test end'));
  let state: CertState | null = null;
  for (let i = 0; i < 100 && !state; i++) {
    state = await secretState(secretName);
    if (!state) await new Promise((r) => setTimeout(r, 100));
  }
  t.ok(state, 'the Secret was created by the serving process');
  if (!state) return;
  const presented = await new Promise<string>((resolve, reject) => {
    const { port } = new URL(server.url);
    const socket = connect({ host: '127.0.0.1', port: Number(port), ca: state!.bundle, servername: 'localhost' }, () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
      socket.end();
    });
    socket.on('error', reject);
  });
  t.equal(presented, fingerprint(splitPem(state.serving.cert)[0] ?? state.serving.cert), 'the server presents the issued certificate, trusted by the published CA');
  t.ok((await caBundles()).every((b) => caFingerprints(b).includes(fingerprint(state!.signer.cert))), 'the CA is in every caBundle');
});
