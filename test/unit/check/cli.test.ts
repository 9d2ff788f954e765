/** The real executable (src/cli/main.ts on this Node): exit codes, stdin, stderr, flushed output. */
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kubeconfigFor } from './fake-cluster.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function run(args: string[], input?: string, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'src/cli/main.ts'), ...args], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
    child.stdin.end(input ?? '');
  });
}

t.test('exit codes and streams of the real process', async (t) => {
  const good = await run(['check', 'examples/good']);
  t.equal(good.code, 0, good.stderr);
  t.match(good.stdout, /^ok: 0 errors, 0 warnings/);
  t.equal(good.stderr, '');

  const bad = await run(['check', 'examples', '--output', 'json']);
  t.equal(bad.code, 1);
  const report = JSON.parse(bad.stdout);
  t.equal(report.findings.length, 19, 'the whole report reaches a pipe before exit');
  t.equal(report.summary.exitCode, 1);

  const piped = await run(['check', '-', '-o', 'github'], readFileSync(join(root, 'examples/bad/rec-db-suffix.yaml'), 'utf8'));
  t.equal(piped.code, 1);
  t.match(piped.stdout, /^::error file=<stdin>,line=14,title=redis-istio-guard rec-db-suffix::RedisEnterpriseCluster redis\/rec-hyphen: /);

  const usage = await run(['check']);
  t.equal(usage.code, 2);
  t.equal(usage.stdout, '');
  t.match(usage.stderr, /redis-istio-guard: check: give files, directories, or - for stdin/);

  const flag = await run(['check', 'examples', '--output', 'xml']);
  t.equal(flag.code, 2);
  t.match(flag.stderr, /argument 'xml' is invalid/);

  const help = await run(['check', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /Exit codes: 0 no errors, 1 errors/);
});

t.test('unreadable input and an unreachable cluster: exit 2, promptly', async (t) => {
  const dir = t.testdir({});
  execFileSync('mkfifo', [join(dir, 'fifo.yaml')]);
  const fifo = await run(['check', join(dir, 'fifo.yaml'), 'examples/good']);
  t.equal(fifo.code, 2);
  t.match(fifo.stdout, /fifo\.yaml: input error: not a regular file/);
  t.match(fifo.stdout, /could not check every input: 0 errors, 0 warnings, 1 input error; checked 3 objects/);
  t.ok(fifo.ms < 30_000, `${fifo.ms} ms`);

  const cluster = await run(['check', 'examples/good', '--cluster', '--kubeconfig', kubeconfigFor(dir, 'https://127.0.0.1:1')]);
  t.equal(cluster.code, 2);
  t.equal(cluster.stdout, '');
  t.match(cluster.stderr, /^redis-istio-guard: check --cluster: cannot list Namespaces at https:\/\/127\.0\.0\.1:1: /);
  t.ok(cluster.ms < 30_000, `${cluster.ms} ms`);
});
