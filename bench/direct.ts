/**
 * Part 1: the limit of our stack. The webhook against a bare node:https server answering a
 * fixed AdmissionReview, same client, same payloads, on 127.0.0.1 over TLS with keep-alive.
 *   node bench/direct.ts            every payload at 10 and 50 connections, 3 rounds of 6 s
 *   node bench/direct.ts --quick    VirtualService with 20 routes at 50 connections, 3 rounds of 5 s
 * Rounds alternate baseline and webhook so that drift on the machine hits both alike.
 */
import { gateway, rec, virtualService } from '../test/fixtures/objects.ts';
import { admissionReview } from '../test/helpers/review.ts';
import { certFiles, load, machine, median, spread, startBaseline, startFastifyFloor, startWebhook, type Load } from './lib.ts';

const quick = process.argv.includes('--quick');
const rounds = 3;
const seconds = quick ? 5 : 6;

const routes = (n: number) =>
  virtualService(
    ['*.redis.example.com'],
    Array.from({ length: n }, (_, i) => ({ sniHosts: [`db${i}.redis.example.com`], host: `db${i}`, port: 12000 + i })),
  );
const payloads: Record<string, object> = {
  REC: rec(),
  Gateway: gateway(['*.redis.example.com']),
  'VirtualService, 1 route': routes(1),
  'VirtualService, 20 routes': routes(20),
  'VirtualService, 200 routes': routes(200),
};
const chosen = quick ? ['VirtualService, 20 routes'] : Object.keys(payloads);
const connectionCounts = quick ? [50] : [10, 50];

const { cert, key, ca } = await certFiles();
const baseline = await startBaseline(cert, key);
const floor = await startFastifyFloor(cert, key);
const webhook = await startWebhook(cert, key);
process.stderr.write(`# ${machine()}\n`);
const rows: string[] = [];
let last = { ratio: 0, p99: 0 };
try {
  for (const name of chosen) {
    const body = JSON.stringify(admissionReview(payloads[name] as never));
    for (const connections of connectionCounts) {
      // A short warm-up lets both JITs settle before anything is counted.
      await load(baseline.url, ca, body, connections, 1);
      await load(floor.url, ca, body, connections, 1);
      await load(webhook.url, ca, body, connections, 1);
      const base: Load[] = [];
      const fast: Load[] = [];
      const ours: Load[] = [];
      for (let r = 0; r < rounds; r++) {
        base.push(await load(baseline.url, ca, body, connections, seconds));
        fast.push(await load(floor.url, ca, body, connections, seconds));
        ours.push(await load(webhook.url, ca, body, connections, seconds));
      }
      const bad = ours.reduce((n, l) => n + l.errors + l.non2xx, 0) + base.reduce((n, l) => n + l.errors + l.non2xx, 0);
      const ratio = median(ours.map((l) => l.rps)) / median(base.map((l) => l.rps));
      const floorRatio = median(ours.map((l) => l.rps)) / median(fast.map((l) => l.rps));
      const p99 = median(ours.map((l) => l.p99));
      last = { ratio, p99 };
      rows.push(
        `| ${name} (${(Buffer.byteLength(body) / 1024).toFixed(1)} KiB) | ${connections} | ` +
          `${median(base.map((l) => l.rps)).toFixed(0)} (${spread(base.map((l) => l.rps))}) | ${median(base.map((l) => l.p50))} | ${median(base.map((l) => l.p99))} | ` +
          `${median(ours.map((l) => l.rps)).toFixed(0)} (${spread(ours.map((l) => l.rps))}) | ${median(ours.map((l) => l.p50))} | ${p99} | ` +
          `${ratio.toFixed(2)} | ${median(fast.map((l) => l.rps)).toFixed(0)} | ${floorRatio.toFixed(2)} | ${bad} |`,
      );
      process.stderr.write(`${rows.at(-1)}\n`);
    }
  }
} finally {
  await baseline.stop();
  await floor.stop();
  await webhook.stop();
}
console.log(`\nMachine: ${machine()}. ${rounds} rounds of ${seconds} s each, medians with the range across rounds.\n`);
console.log('| payload | conns | baseline req/s | p50 ms | p99 ms | webhook req/s | p50 ms | p99 ms | ratio | fastify floor req/s | ratio to floor | errors |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
console.log(`throughput ratio: ${last.ratio.toFixed(2)} p99 ms: ${last.p99}`);
