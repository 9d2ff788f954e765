/**
 * Every manifest `helm template` renders is accepted by a real kube-apiserver
 * (`kubectl apply --dry-run=server`), for each certificate mode with mutation on and off.
 * cert-manager's CRDs are not installed in the harness, so in certManager mode its Issuer and
 * Certificate are left out of the dry run (their fields are asserted in chart.test.ts).
 *
 * Then the default rendering is applied for real: with no pod behind the Service and
 * failurePolicy Fail, a Gateway in an ordinary namespace is rejected, while kube-system, the
 * release namespace and an opted-out namespace are never sent to the webhook.
 *
 * Last, `helm install` and `helm upgrade` against the same API server: upgrades keep the selfSigned
 * Secret and caBundle (the chart looks the Secret up), also after the webhook renewed it.
 */
import t from 'tap';
import { startControlPlane } from '../harness/controlplane.ts';
import { chartDir, ensureHelm, helmTemplate, NAMESPACE } from '../harness/helm/helm.ts';
import { stringify } from 'yaml';

// Cold builds of helm, kube-apiserver, etcd and kubectl take minutes; later runs reuse them.
t.setTimeout(30 * 60_000);

const helm = await ensureHelm();
t.teardown(() => helm.cleanup());
const cp = await startControlPlane();
t.teardown(() => cp.stop());

const ns = await cp.kubectl(['create', 'namespace', NAMESPACE]);
if (ns.code !== 0) throw new Error(ns.stderr);

const CERT_MANAGER_GROUP = 'cert-manager.io/';
const modes: Record<string, Record<string, string>> = {
  selfSigned: {},
  certManager: { 'certificates.mode': 'certManager' },
  existingSecret: {
    'certificates.mode': 'existingSecret',
    'certificates.secretName': 'my-webhook-tls',
    // Any base64 value is a valid caBundle to the API server.
    'certificates.existingSecret.caBundle': Buffer.from('not checked by the dry run').toString('base64'),
  },
};

for (const [mode, values] of Object.entries(modes)) {
  for (const mutate of [false, true]) {
    t.test(`kubectl apply --dry-run=server: ${mode}, mutation ${mutate ? 'on' : 'off'}`, async (t) => {
      const r = await helmTemplate(helm, { ...values, 'mutation.enabled': String(mutate) });
      const skipped = r.objects.filter((o) => o.apiVersion.startsWith(CERT_MANAGER_GROUP));
      const objects = r.objects.filter((o) => !o.apiVersion.startsWith(CERT_MANAGER_GROUP));
      if (mode === 'certManager') {
        t.same(skipped.map((o) => o.kind).sort(), ['Certificate', 'Issuer'], 'cert-manager objects left out (no CRDs)');
      } else t.equal(skipped.length, 0);
      const input = objects.map((o) => stringify(o)).join('---\n');
      const res = await cp.kubectl(['apply', '--dry-run=server', '-o', 'name', '-f', '-'], { input });
      t.equal(res.code, 0, res.stderr);
      const accepted = res.stdout.trim().split('\n').filter(Boolean);
      t.equal(accepted.length, objects.length, `all ${objects.length} objects accepted: ${accepted.join(', ')}`);
      t.equal(res.stderr.trim(), '', 'no warnings');
    });
  }
}

t.test('installed for real, the webhook guards ordinary namespaces only', async (t) => {
  const r = await helmTemplate(helm, {});
  const input = r.objects.map((o) => stringify(o)).join('---\n');
  const applied = await cp.kubectl(['apply', '-f', '-'], { input });
  t.equal(applied.code, 0, applied.stderr);
  t.teardown(() => cp.kubectl(['delete', '--ignore-not-found', '-f', '-'], { input }));

  for (const name of ['apps', 'opted-out']) {
    const res = await cp.kubectl(['create', 'namespace', name]);
    t.equal(res.code, 0, res.stderr);
  }
  t.equal((await cp.kubectl(['label', 'namespace', 'opted-out', 'redis-istio-guard.io/ignore=true'])).code, 0);

  const gateway = (namespace: string) => `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: ${namespace}
spec:
  selector:
    istio: ingressgateway
  servers:
    - port: {number: 443, name: https, protocol: HTTPS}
      hosts: ["db.example.com"]
      tls: {mode: PASSTHROUGH}
`;
  // The configuration becomes active asynchronously: wait until the guarded namespace is refused.
  let lastError = '';
  await cp.waitForWebhook(async () => {
    const res = await cp.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: gateway('apps') });
    lastError = res.stderr;
    return res.code !== 0 && res.stderr.includes('validate.redis-istio-guard.io');
  });
  t.match(lastError, /failed calling webhook "validate.redis-istio-guard.io"/, 'no pod ready + failurePolicy Fail: rejected');

  for (const free of ['kube-system', NAMESPACE, 'opted-out']) {
    const res = await cp.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: gateway(free) });
    t.equal(res.code, 0, `${free} is not sent to the webhook: ${res.stderr}`);
  }
});

t.test('helm install, then upgrade, keeps the selfSigned certificate (and one the webhook renewed)', async (t) => {
  const ns = 'rig-upgrade';
  const args = ['--namespace', ns, '--kubeconfig', cp.kubeconfig];
  const install = await helm.run(['install', 'guard', chartDir, '--create-namespace', ...args]);
  t.equal(install.code, 0, install.stderr);
  t.teardown(() => helm.run(['uninstall', 'guard', ...args]));
  const secretPath = `/api/v1/namespaces/${ns}/secrets/guard-redis-istio-guard-tls`;
  const vwcPath = '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/guard-redis-istio-guard';
  const caBundle = async () => (await cp.request('GET', vwcPath)).body.webhooks[0].clientConfig.caBundle as string;
  const first = (await cp.request('GET', secretPath)).body;
  t.equal(await caBundle(), first.data['ca.crt'], 'caBundle is the installed CA');

  const upgrade = await helm.run(['upgrade', 'guard', chartDir, ...args, '--set', 'replicaCount=3']);
  t.equal(upgrade.code, 0, upgrade.stderr);
  const second = (await cp.request('GET', secretPath)).body;
  t.same(second.data, first.data, 'upgrade reused the Secret');
  t.equal(await caBundle(), first.data['ca.crt'], 'caBundle unchanged');

  // As if the webhook rotated its CA: the next upgrade keeps what it finds, annotation included.
  const rotated = { ...first.data, 'ca.crt': Buffer.from(Buffer.from(first.data['ca.crt'], 'base64').toString().repeat(2)).toString('base64') };
  const patch = await cp.request('PATCH', secretPath, {
    metadata: { annotations: { 'redis-istio-guard.io/next-ca-since': '2026-01-01T00:00:00.000Z' } },
    data: rotated,
  });
  t.equal(patch.status, 200);
  const again = await helm.run(['upgrade', 'guard', chartDir, ...args]);
  t.equal(again.code, 0, again.stderr);
  const third = (await cp.request('GET', secretPath)).body;
  t.same(third.data, rotated, 'renewed Secret kept');
  t.equal(third.metadata.annotations['redis-istio-guard.io/next-ca-since'], '2026-01-01T00:00:00.000Z');
  t.equal(await caBundle(), rotated['ca.crt'], 'caBundle follows the renewed Secret');

  const uninstall = await helm.run(['uninstall', 'guard', ...args]);
  t.equal(uninstall.code, 0, uninstall.stderr);
  t.equal((await cp.request('GET', vwcPath)).status, 404, 'uninstall removes the webhook configuration');
});
