/**
 * Every manifest `helm template` renders is accepted by a real kube-apiserver
 * (`kubectl apply --dry-run=server`), for each certificate mode with mutation on and off.
 * cert-manager's CRDs are not installed in the harness, so in certManager mode its Issuer and
 * Certificate are left out of the dry run (their fields are asserted in chart.test.ts).
 *
 * Then the default rendering is applied for real: with no pod behind the Service and
 * failurePolicy Fail, a Gateway in an ordinary namespace is rejected, while kube-system, the
 * release namespace and an opted-out namespace are never sent to the webhook.
 */
import t from 'tap';
import { startControlPlane } from '../harness/controlplane.ts';
import { ensureHelm, helmTemplate, NAMESPACE } from '../harness/helm/helm.ts';
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
