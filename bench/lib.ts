/** Shared pieces of the benchmarks: servers as child processes, load from autocannon, statistics. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';
import { selfSignedPair } from '../src/server/tls.ts';

export const repo = resolve(import.meta.dirname, '..');

export async function certFiles(): Promise<{ cert: string; key: string; ca: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'rig-bench-'));
  const pair = await selfSignedPair();
  writeFileSync(join(dir, 'tls.crt'), pair.cert);
  writeFileSync(join(dir, 'tls.key'), pair.key);
  return { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key'), ca: pair.cert };
}

export interface Child {
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Starts a process that prints a JSON line with an "address" field when it listens. */
export function startChild(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Child> {
  const proc = spawn(process.execPath, args, { cwd: repo, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((res, rej) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d;
      const m = /"address":"(https:\/\/[^"]+)"/.exec(buf);
      if (!m?.[1]) return;
      proc.stdout?.off('data', onData);
      proc.stdout?.resume();
      res({
        url: m[1],
        proc,
        stop: () =>
          new Promise((done) => {
            proc.once('exit', () => done());
            proc.kill('SIGTERM');
          }),
      });
    };
    proc.stdout?.on('data', onData);
    proc.once('exit', (code) => rej(new Error(`${args.join(' ')} exited with ${code}`)));
  });
}

/** Our webhook, as it runs in production: the compiled CLI, info logs (to /dev/null here). */
export function startWebhook(cert: string, key: string, extra: string[] = []): Promise<Child> {
  // RIG_BENCH_NODE_FLAGS: V8 flags for the webhook process only, e.g. "--max-old-space-size=128".
  const flags = (process.env.RIG_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  return startChild(
    [...flags, join(repo, 'dist/cli/main.js'), 'serve', '--host', '127.0.0.1', '--port', '0', '--tls-cert-file', cert, '--tls-key-file', key, '--shutdown-delay', '0', ...extra],
  );
}

export function startBaseline(cert: string, key: string): Promise<Child> {
  return startChild([join(repo, 'bench/baseline-server.ts'), cert, key]);
}

export function startFastifyFloor(cert: string, key: string): Promise<Child> {
  return startChild([join(repo, 'bench/fastify-floor-server.ts'), cert, key]);
}

export interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

export async function load(url: string, ca: string, body: string, connections: number, seconds: number): Promise<Load> {
  const result = await autocannon({
    url: `${url}/validate?timeout=10s`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    duration: seconds,
    tlsOptions: { ca },
  } as autocannon.Options);
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

export const spread = (xs: number[]): string => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;

export function machine(): string {
  return `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
}
