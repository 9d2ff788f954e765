/**
 * Part 3: what the webhook adds to the API server's own path. Server-side dry-run creates of a
 * VirtualService through a real kube-apiserver, with the webhook registered (the chart's
 * ValidatingWebhookConfiguration, pointed at a local URL) and without it, in the same run,
 * alternating, at 50 and 200 concurrent clients.
 *   node bench/apiserver.ts
 */
import autocannon from 'autocannon';
import { startControlPlane } from '../test/harness/controlplane.ts';
import { CONFIGURATION_NAME, validatingWebhookConfiguration } from '../test/harness/webhook-config.ts';
import { virtualService } from '../test/fixtures/objects.ts';
import { certFiles, machine, median, spread, startWebhook } from './lib.ts';

const rounds = 3;
const seconds = 10;
const cp = await startControlPlane();
const { cert, key, ca } = await certFiles();
process.stderr.write(`# ${machine()}\n`);

for (const ns of ['bench', 'istio-system'])
  await cp.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
for (let i = 0; i < 20; i++)
  await cp.request('POST', '/api/v1/namespaces/bench/services', {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `db${i}` },
    spec: { clusterIP: 'None', ports: [{ name: 'redis', port: 12000 + i }] },
  });
const vs = virtualService(
  ['*.redis.example.com'],
  Array.from({ length: 20 }, (_, i) => ({ sniHosts: [`db${i}.redis.example.com`], host: `db${i}`, port: 12000 + i })),
  { namespace: 'bench', gateways: ['mesh'] },
);
const body = JSON.stringify(vs);
const webhook = await startWebhook(cert, key, ['--cluster-checks', 'on', '--kubeconfig', cp.kubeconfig]);
const configuration = validatingWebhookConfiguration({ url: webhook.url, caPem: ca, failurePolicy: 'Fail' });

async function dryRuns(connections: number, secs: number) {
  const r = await autocannon({
    url: `${cp.url}/apis/networking.istio.io/v1/namespaces/bench/virtualservices?dryRun=All`,
    method: 'POST',
    headers: { authorization: `Bearer ${cp.token}`, 'content-type': 'application/json' },
    body,
    connections,
    duration: secs,
    tlsOptions: { ca: cp.caPem },
  } as autocannon.Options);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, bad: r.errors + r.timeouts + r.non2xx };
}

/** Registers or removes the webhook and waits until a dry run shows the change. */
async function setWebhook(on: boolean) {
  if (on) {
    const res = await cp.request('POST', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations', configuration);
    if (res.status !== 201) throw new Error(`register: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  } else {
    await cp.request('DELETE', `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${CONFIGURATION_NAME}`);
  }
  // A VirtualService to a missing Service is refused only while the webhook is active.
  const probe = { ...vs, spec: { ...vs.spec, tls: [{ match: [{ sniHosts: ['x.redis.example.com'] }], route: [{ destination: { host: 'missing' } }] }] } };
  await cp.waitForWebhook(async () => {
    const r = await cp.request('POST', '/apis/networking.istio.io/v1/namespaces/bench/virtualservices?dryRun=All', probe);
    return on ? r.status === 403 : r.status === 201;
  }, 30_000);
}

const rows: string[] = [];
try {
  for (const connections of [50, 200]) {
    const without: Awaited<ReturnType<typeof dryRuns>>[] = [];
    const withHook: Awaited<ReturnType<typeof dryRuns>>[] = [];
    for (let r = 0; r < rounds; r++) {
      await setWebhook(false);
      if (r === 0) await dryRuns(connections, 2);
      without.push(await dryRuns(connections, seconds));
      await setWebhook(true);
      if (r === 0) await dryRuns(connections, 2);
      withHook.push(await dryRuns(connections, seconds));
    }
    const p99w = median(withHook.map((x) => x.p99));
    const p99o = median(without.map((x) => x.p99));
    rows.push(
      `| ${connections} | ${median(without.map((x) => x.rps)).toFixed(0)} (${spread(without.map((x) => x.rps))}) | ${median(without.map((x) => x.p50))} | ${p99o} | ` +
        `${median(withHook.map((x) => x.rps)).toFixed(0)} (${spread(withHook.map((x) => x.rps))}) | ${median(withHook.map((x) => x.p50))} | ${p99w} | ${(p99w / p99o).toFixed(2)} | ` +
        `${without.reduce((s, x) => s + x.bad, 0) + withHook.reduce((s, x) => s + x.bad, 0)} |`,
    );
    process.stderr.write(`${rows.at(-1)}\n`);
  }
} finally {
  await webhook.stop();
  await cp.stop();
}
console.log(`\nMachine: ${machine()}. ${rounds} rounds of ${seconds} s, alternating without and with the webhook; medians, range across rounds.\n`);
console.log('| clients | without: req/s | p50 ms | p99 ms | with webhook: req/s | p50 ms | p99 ms | p99 ratio | errors |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
