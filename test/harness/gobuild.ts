/**
 * Builds the Go test harnesses on first use and reuses them while their pins are unchanged.
 *
 * Output lives in test/harness/.bin/<module>-<hash> (ignored by git), or under $RIG_HARNESS_BIN.
 * The hash covers go.mod, go.sum and the module's .go files, so a changed pin rebuilds.
 * Parallel test files may ask at once: a directory lock makes one build and the others wait.
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const harnessRoot = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(harnessRoot, '..', '..');

export interface GoTool {
  /** Go package to build, e.g. "k8s.io/kubernetes/cmd/kube-apiserver" or "." */
  pkg: string;
  /** Output file name inside the cache folder. */
  out: string;
}

function moduleHash(moduleDir: string): string {
  const h = createHash('sha256');
  const files = readdirSync(moduleDir)
    .filter((f) => f === 'go.mod' || f === 'go.sum' || f.endsWith('.go'))
    .sort();
  for (const f of files) {
    h.update(f);
    h.update(readFileSync(join(moduleDir, f)));
  }
  return h.digest('hex').slice(0, 16);
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolvePromise() : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`)),
    );
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withLock<T>(lockDir: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 60 * 60 * 1000;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A lock whose owner died is stale: take it over.
      let owner = 0;
      try {
        owner = Number(readFileSync(join(lockDir, 'pid'), 'utf8'));
      } catch {
        /* owner not written yet */
      }
      if (owner > 0 && !isAlive(owner)) rmSync(lockDir, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`timed out waiting for build lock ${lockDir}`);
      else await sleep(1000);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

/** Whether a process still runs (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Returns absolute paths of the built tools, building them first if the cache has no build for
 * the current pins. Build time is printed to stderr, so CI logs show cold and warm costs.
 */
export async function ensureGoTools(moduleDir: string, tools: GoTool[]): Promise<Record<string, string>> {
  const binRoot = process.env.RIG_HARNESS_BIN ?? join(harnessRoot, '.bin');
  const outDir = join(binRoot, `${basename(moduleDir)}-${moduleHash(moduleDir)}`);
  const paths = Object.fromEntries(tools.map((t) => [t.out, join(outDir, t.out)]));
  const done = () => tools.every((t) => existsSync(join(outDir, t.out)) && statSync(join(outDir, t.out)).size > 0);
  if (done()) return paths;
  mkdirSync(binRoot, { recursive: true });
  await withLock(`${outDir}.lock`, async () => {
    if (done()) return;
    mkdirSync(outDir, { recursive: true });
    const env = { ...process.env, CGO_ENABLED: '0' };
    for (const t of tools) {
      const started = Date.now();
      await run('go', ['build', '-trimpath', '-o', join(outDir, t.out), t.pkg], moduleDir, env);
      process.stderr.write(`# built ${t.out} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    }
  });
  return paths;
}
