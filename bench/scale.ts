/**
 * Parts 2 and 4: memory, admission latency and start-up time of the webhook with its cluster
 * cache filled through a real kube-apiserver (test/harness), at growing numbers of Services
 * and REDBs (one REDB per ten Services).
 *   node bench/scale.ts                 0, 1,000, 10,000 and 50,000 Services
 *   node bench/scale.ts 0 1000          only those sizes
 * At each size a fresh webhook process starts (time to /readyz 200 is the start-up), settles,
 * then takes a load of 50 connections; RSS is read from /proc after the load.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { startControlPlane } from '../test/harness/controlplane.ts';
import { virtualService } from '../test/fixtures/objects.ts';
import { admissionReview } from '../test/helpers/review.ts';
import { certFiles, load, machine, median, startWebhook } from './lib.ts';

const sizes = process.argv.slice(2).map(Number).filter((n) => Number.isFinite(n));
const steps = sizes.length > 0 ? sizes : [0, 1000, 10_000, 50_000];
const NAMESPACES = 50;

const cp = await startControlPlane();
const { cert, key, ca } = await certFiles();
process.stderr.write(`# ${machine()}\n`);

for (let i = 0; i < NAMESPACES; i++)
  await cp.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: `scale-${i}` } });

let created = 0;
async function fill(target: number): Promise<void> {
  let next = created;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= target) return;
      const ns = `scale-${i % NAMESPACES}`;
      // Headless: the test API server's ClusterIP range holds 254 addresses.
      const svc = await cp.request('POST', `/api/v1/namespaces/${ns}/services`, {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: `db${i}` },
        spec: { clusterIP: 'None', ports: [{ name: 'redis', port: 12000 + (i % 1000) }] },
      });
      if (svc.status !== 201) throw new Error(`Service db${i}: ${svc.status}`);
      if (i % 10 === 0) {
        const redb = await cp.request('POST', `/apis/app.redislabs.com/v1alpha1/namespaces/${ns}/redisenterprisedatabases`, {
          apiVersion: 'app.redislabs.com/v1alpha1',
          kind: 'RedisEnterpriseDatabase',
          metadata: { name: `redb${i}` },
          spec: { redisEnterpriseCluster: { name: 'rec' }, databasePort: 12000 + (i % 1000) },
        });
        if (redb.status !== 201) throw new Error(`REDB redb${i}: ${redb.status} ${JSON.stringify(redb.body).slice(0, 200)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  created = target;
}

function ready(url: string): Promise<boolean> {
  return new Promise((res) => {
    request(new URL('/readyz', url), { ca }, (r) => {
      r.resume();
      res(r.statusCode === 200);
    })
      .on('error', () => res(false))
      .end();
  });
}

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

// A VirtualService in scale-0 routing to 20 Services that exist (db0, db50, ...).
const vs = virtualService(
  ['*.redis.example.com'],
  Array.from({ length: 20 }, (_, k) => ({ sniHosts: [`db${k}.redis.example.com`], host: `db${k * NAMESPACES}`, port: 12000 + ((k * NAMESPACES) % 1000) })),
  { namespace: 'scale-0' },
);
const body = JSON.stringify(admissionReview(vs as never));

const rows: string[] = [];
try {
  for (const n of steps) {
    const fillStarted = Date.now();
    await fill(n);
    process.stderr.write(`# ${n} Services in the API server (${((Date.now() - fillStarted) / 1000).toFixed(0)} s to create)\n`);
    const started = Date.now();
    const w = await startWebhook(cert, key, ['--cluster-checks', 'on', '--kubeconfig', cp.kubeconfig]);
    while (!(await ready(w.url))) await new Promise((r) => setTimeout(r, 50));
    const startup = (Date.now() - started) / 1000;
    const idleRss = rssMiB(w.proc.pid as number);
    await load(w.url, ca, body, 50, 2);
    const runs = [];
    for (let r = 0; r < 3; r++) runs.push(await load(w.url, ca, body, 50, 5));
    const rss = rssMiB(w.proc.pid as number);
    const bad = runs.reduce((s, l) => s + l.errors + l.non2xx, 0);
    rows.push(
      `| ${n} | ${n / 10} | ${startup.toFixed(2)} | ${idleRss.toFixed(0)} | ${rss.toFixed(0)} | ${median(runs.map((l) => l.rps)).toFixed(0)} | ${median(runs.map((l) => l.p50))} | ${median(runs.map((l) => l.p99))} | ${bad} |`,
    );
    process.stderr.write(`${rows.at(-1)}\n`);
    await w.stop();
  }
} finally {
  await cp.stop();
}
console.log(`\nMachine: ${machine()}. Load: 50 connections, 3 rounds of 5 s, medians; VirtualService with 20 routes to existing Services.\n`);
console.log('| Services | REDBs | start to ready, s | RSS ready, MiB | RSS after load, MiB | req/s | p50 ms | p99 ms | errors |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
