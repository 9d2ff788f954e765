/**
 * `npm run bench`: every part, one after the other, so that none disturbs another.
 * `npm run bench -- --quick`: part 1 at 50 connections only; its last line is
 * `throughput ratio: R p99 ms: P`.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const quick = process.argv.includes('--quick');
const parts = quick ? [['direct.ts', '--quick']] : [['direct.ts'], ['scale.ts'], ['apiserver.ts']];
for (const [script, ...args] of parts) {
  const r = spawnSync(process.execPath, [join(import.meta.dirname, script as string), ...args], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
