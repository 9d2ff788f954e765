/**
 * A real Kubernetes control plane for tests: etcd + kube-apiserver built from the pinned Go module
 * in test/harness/kube, no Docker, no kubelet, no controller-manager.
 *
 * Everything listens on and talks to 127.0.0.1 only. All state (etcd data, apiserver certs, logs,
 * kubeconfig) lives in one temp dir that stop() removes. Child processes are killed by pid on
 * stop(), on process 'exit', and by a small detached watchdog if this process dies without running
 * its exit handlers (SIGKILL, a timeout's SIGALRM).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureGoTools, harnessRoot, isAlive, repoRoot } from './gobuild.ts';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ControlPlaneTimings {
  /** etcd spawn until its /health answers. */
  etcdMs: number;
  /** kube-apiserver spawn until /readyz is 200. */
  apiserverMs: number;
  /** Applying the Istio and Redis Enterprise CRDs until all are Established (0 when skipped). */
  crdsMs: number;
}

export interface ControlPlane {
  /** https://127.0.0.1:<port> */
  url: string;
  /** Bearer token of a system:masters user. */
  token: string;
  /** CA that signed the apiserver serving cert. */
  caPem: string;
  /** Path of a kubeconfig file for kubectl and @kubernetes/client-node. */
  kubeconfig: string;
  /** Temp dir holding everything (etcd data, pki, logs, kubeconfig). */
  dir: string;
  /** Absolute paths of the built tools: kube-apiserver, kubectl, etcd. */
  bin: Record<string, string>;
  /** Pids of the etcd and kube-apiserver processes. */
  pids: number[];
  timings: ControlPlaneTimings;
  kubectl(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<ExecResult>;
  /** Raw REST call via node:https with the CA and token. PATCH bodies are sent as merge patches. */
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** `kubectl apply --server-side` of a YAML stream; throws with kubectl's stderr on failure. */
  applyYaml(yaml: string): Promise<void>;
  /** Polls probe until it returns true (webhook configurations become active asynchronously). */
  waitForWebhook(probe: () => Promise<boolean>, timeoutMs?: number): Promise<void>;
  /** Kills every process it started (SIGTERM, then SIGKILL), removes dir. Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Apply the Istio and Redis Enterprise CRDs and wait until they are Established. Default true. */
  installCrds?: boolean;
  /** How long to wait for /readyz. Default 90 s. */
  readyTimeoutMs?: number;
}

export const kubeModuleDir = join(harnessRoot, 'kube');

/** The istio.io/istio pseudo-version whose CRDs are installed (crd-all.gen.yaml). */
export const ISTIO_MODULE_VERSION = 'v0.0.0-20260827124520-eed52ebb66ad';

const KUBE_TOOLS = [
  { pkg: 'k8s.io/kubernetes/cmd/kube-apiserver', out: 'kube-apiserver' },
  { pkg: 'k8s.io/kubernetes/cmd/kubectl', out: 'kubectl' },
  { pkg: 'go.etcd.io/etcd/server/v3', out: 'etcd' },
];

/** The k8s.io/kubernetes version pinned in test/harness/kube/go.mod, e.g. "v1.36.3". */
export function pinnedKubeVersion(): string {
  const m = /^\s*(?:require\s+)?k8s\.io\/kubernetes\s+(v\S+)/m.exec(readFileSync(join(kubeModuleDir, 'go.mod'), 'utf8'));
  if (!m?.[1]) throw new Error(`no k8s.io/kubernetes requirement in ${kubeModuleDir}/go.mod`);
  return m[1];
}

/**
 * Builds (or finds in the cache) kube-apiserver, kubectl and etcd. Call it before timed work.
 *
 * A plain `go build` leaves the version at "v0.0.0-master+$Format:%H$", which `kubectl version`
 * cannot parse (it exits 1). Kubernetes' own build stamps the version with -X; we pass the one
 * variable that both kubectl and the apiserver read through GOFLAGS (ensureGoTools builds with
 * process.env). The value comes from go.mod, which is part of the cache key.
 */
export async function ensureKubeTools(): Promise<Record<string, string>> {
  const saved = process.env.GOFLAGS;
  const stamp = `-ldflags=-X=k8s.io/component-base/version.gitVersion=${pinnedKubeVersion()}`;
  process.env.GOFLAGS = saved ? `${saved} ${stamp}` : stamp;
  try {
    return await ensureGoTools(kubeModuleDir, KUBE_TOOLS);
  } finally {
    if (saved === undefined) delete process.env.GOFLAGS;
    else process.env.GOFLAGS = saved;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Environment for children: no proxy settings, so nothing is routed off the machine. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of Object.keys(env)) {
    if (/^(https?|all|no)_proxy$/i.test(k)) delete env[k];
  }
  env.NO_PROXY = '127.0.0.1,localhost';
  return env;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolvePort(port));
    });
  });
}

function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export function exec(
  cmd: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<ExecResult> {
  return new Promise((resolveExec, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? childEnv(),
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid) process.kill(child.pid, 'SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) stderr += `\n[harness] ${cmd} killed after ${opts.timeoutMs ?? 120_000} ms`;
      resolveExec({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on('error', () => {
      /* child exited before reading its input; its exit code tells */
    });
    child.stdin.end(opts.input ?? '');
  });
}

function httpGetStatus(url: string): Promise<number> {
  return new Promise((resolveStatus) => {
    const req = httpRequest(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolveStatus(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolveStatus(0));
    req.end();
  });
}

/** The CA among the PEM blocks of the apiserver's self-generated apiserver.crt (leaf + CA). */
function pickCa(bundle: string): string {
  const blocks = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
  for (const pem of blocks) {
    if (new X509Certificate(pem).ca) return pem.endsWith('\n') ? pem : `${pem}\n`;
  }
  throw new Error(`no CA certificate among ${blocks.length} PEM blocks of the apiserver cert`);
}

/** Finds the Redis Enterprise CRD folder: $RIG_REDIS_CRD_DIR, else <repo>/../shared/crds. */
export function redisCrdDir(): string {
  const dir = process.env.RIG_REDIS_CRD_DIR ?? resolve(repoRoot, '..', 'shared', 'crds');
  if (!existsSync(join(dir, 'redis-enterprise-rec_crd.yaml'))) {
    throw new Error(
      `Redis Enterprise CRDs not found in ${dir} (expected redis-enterprise-rec_crd.yaml there); ` +
        'put shared/ beside the repository clone or set RIG_REDIS_CRD_DIR',
    );
  }
  return dir;
}

/** Path of Istio's crd-all.gen.yaml inside the pinned istio.io/istio module (downloaded via the Go proxy). */
export async function istioCrdFile(workDir: string): Promise<string> {
  const res = await exec('go', ['mod', 'download', '-json', `istio.io/istio@${ISTIO_MODULE_VERSION}`], {
    cwd: workDir,
    env: process.env,
    timeoutMs: 15 * 60_000,
  });
  if (res.code !== 0) throw new Error(`go mod download istio.io/istio failed:\n${res.stdout}\n${res.stderr}`);
  const info = JSON.parse(res.stdout) as { Dir?: string; Error?: string };
  if (!info.Dir) throw new Error(`go mod download istio.io/istio gave no Dir: ${info.Error ?? res.stdout}`);
  const file = join(info.Dir, 'manifests', 'charts', 'base', 'files', 'crd-all.gen.yaml');
  if (!existsSync(file)) throw new Error(`${file} missing from the istio.io/istio module`);
  return file;
}

// Pids alive in this process, killed synchronously on exit whatever happened to the tests.
const livePids = new Set<number>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of livePids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/**
 * A detached node process that SIGKILLs the children and removes dir once this process is gone
 * (covers deaths that skip 'exit' handlers). It exits by itself when the children are gone.
 */
function startWatchdog(pids: number[], dir: string): void {
  const script = `
    const [parent, dir, ...pids] = process.argv.slice(1);
    const alive = (p) => { try { process.kill(Number(p), 0); return true; } catch { return false; } };
    setInterval(() => {
      const left = pids.filter(alive);
      if (left.length === 0) process.exit(0);
      if (!alive(parent)) {
        for (const p of left) { try { process.kill(Number(p), 'SIGKILL'); } catch {} }
        require('node:fs').rmSync(dir, { recursive: true, force: true });
        process.exit(0);
      }
    }, 1000);`;
  const child = spawn(process.execPath, ['-e', script, String(process.pid), dir, ...pids.map(String)], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
}

function spawnLogged(cmd: string, args: string[], logFile: string): ChildProcess {
  const log = createWriteStream(logFile);
  const child = spawn(cmd, args, { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  child.on('close', () => log.end());
  if (child.pid) livePids.add(child.pid);
  child.on('exit', () => {
    if (child.pid) livePids.delete(child.pid);
  });
  return child;
}

async function terminate(child: ChildProcess, graceMs = 5000): Promise<void> {
  const pid = child.pid;
  if (!pid || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = sleep(graceMs).then(() => 'timeout' as const);
  if ((await Promise.race([exited.then(() => 'exited' as const), timer])) === 'timeout') {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
    await Promise.race([exited, sleep(2000)]);
  }
  livePids.delete(pid);
}

export async function startControlPlane(opts: StartOptions = {}): Promise<ControlPlane> {
  const installCrds = opts.installCrds ?? true;
  const crdDir = installCrds ? redisCrdDir() : '';
  const bin = await ensureKubeTools();
  const [apiserverBin, kubectlBin, etcdBin] = ['kube-apiserver', 'kubectl', 'etcd'].map((name) => {
    const path = bin[name];
    if (!path) throw new Error(`ensureGoTools returned no ${name}`);
    return path;
  }) as [string, string, string];

  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), 'rig-controlplane-'));
  liveDirs.add(dir);
  const pki = join(dir, 'pki');
  mkdirSync(pki);

  const children: ChildProcess[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // apiserver first, so it does not log etcd connection errors while going down.
      for (const child of [...children].reverse()) await terminate(child);
      rmSync(dir, { recursive: true, force: true });
      liveDirs.delete(dir);
    })();
    return stopping;
  };

  try {
    // --- etcd ---
    const [etcdClientPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const etcdLog = join(dir, 'etcd.log');
    const etcdStarted = Date.now();
    const etcd = spawnLogged(
      etcdBin,
      [
        '--name=rig',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=rig=${peerUrl}`,
        '--initial-cluster-state=new',
        '--unsafe-no-fsync',
        '--log-level=error',
      ],
      etcdLog,
    );
    children.push(etcd);
    for (;;) {
      if (etcd.exitCode !== null) throw new Error(`etcd exited with ${etcd.exitCode}:\n${tail(etcdLog)}`);
      if ((await httpGetStatus(`${etcdUrl}/health`)) === 200) break;
      if (Date.now() - etcdStarted > 30_000) throw new Error(`etcd not healthy after 30 s:\n${tail(etcdLog)}`);
      await sleep(100);
    }
    const etcdMs = Date.now() - etcdStarted;

    // --- kube-apiserver ---
    const url = `https://127.0.0.1:${apiPort}`;
    const token = `rig-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
    const tokenFile = join(pki, 'tokens.csv');
    writeFileSync(tokenFile, `${token},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });
    const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const saPub = join(pki, 'sa.pub');
    const saKey = join(pki, 'sa.key');
    writeFileSync(saPub, sa.publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(saKey, sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });

    const apiLog = join(dir, 'kube-apiserver.log');
    const apiStarted = Date.now();
    const apiserver = spawnLogged(
      apiserverBin,
      [
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        `--cert-dir=${pki}`,
        `--etcd-servers=${etcdUrl}`,
        '--endpoint-reconciler-type=none',
        `--service-account-issuer=${url}`,
        `--service-account-key-file=${saPub}`,
        `--service-account-signing-key-file=${saKey}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--authorization-mode=RBAC',
        `--token-auth-file=${tokenFile}`,
        '--disable-admission-plugins=ServiceAccount',
        '--enable-priority-and-fairness=false',
        '--allow-privileged=true',
        '--v=1',
      ],
      apiLog,
    );
    children.push(apiserver);
    startWatchdog(
      children.map((c) => c.pid).filter((p): p is number => typeof p === 'number'),
      dir,
    );

    const certFile = join(pki, 'apiserver.crt');
    const readyTimeout = opts.readyTimeoutMs ?? 90_000;
    let caPem = '';
    let lastReady = '';
    for (;;) {
      if (apiserver.exitCode !== null || apiserver.signalCode !== null) {
        throw new Error(`kube-apiserver exited (${apiserver.exitCode ?? apiserver.signalCode}):\n${tail(apiLog)}`);
      }
      if (!caPem && existsSync(certFile)) {
        try {
          caPem = pickCa(readFileSync(certFile, 'utf8'));
        } catch {
          caPem = ''; // half-written: try again
        }
      }
      if (caPem) {
        const res = await restCall(url, caPem, token, 'GET', '/readyz', undefined, 5000).catch(
          (err: Error) => ({ status: 0, body: err.message }),
        );
        if (res.status === 200) break;
        lastReady = `${res.status} ${typeof res.body === 'string' ? res.body : JSON.stringify(res.body)}`;
      }
      if (Date.now() - apiStarted > readyTimeout) {
        throw new Error(
          `kube-apiserver not ready after ${readyTimeout / 1000} s (last /readyz: ${lastReady.slice(-2000) || 'none'}); log tail:\n${tail(apiLog)}`,
        );
      }
      await sleep(200);
    }
    const apiserverMs = Date.now() - apiStarted;

    // --- kubeconfig (JSON is valid YAML for kubectl and client-node) ---
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      JSON.stringify(
        {
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [
            {
              name: 'rig',
              cluster: { server: url, 'certificate-authority-data': Buffer.from(caPem).toString('base64') },
            },
          ],
          users: [{ name: 'rig-admin', user: { token } }],
          contexts: [{ name: 'rig', context: { cluster: 'rig', user: 'rig-admin', namespace: 'default' } }],
          'current-context': 'rig',
        },
        null,
        2,
      ),
      { mode: 0o600 },
    );
    // A per-plane discovery cache: kubectl's default (~/.kube/cache) is keyed by host:port, and
    // ports get reused by later planes that have other CRDs.
    const kubectlEnv = childEnv({ KUBECONFIG: kubeconfig, KUBECACHEDIR: join(dir, 'kubecache') });
    const kubectl = (args: string[], o: { input?: string; timeoutMs?: number } = {}) =>
      exec(kubectlBin, args, { ...o, env: kubectlEnv });

    const applyYaml = async (yaml: string): Promise<void> => {
      const res = await kubectl(['apply', '--server-side', '--field-manager=rig-harness', '-f', '-'], { input: yaml });
      if (res.code !== 0) throw new Error(`kubectl apply failed (${res.code}):\n${res.stderr}${res.stdout}`);
    };

    // --- CRDs ---
    let crdsMs = 0;
    if (installCrds) {
      const crdStarted = Date.now();
      const istioFile = await istioCrdFile(dir);
      for (const file of [istioFile, crdDir]) {
        const res = await kubectl(['apply', '--server-side', '--field-manager=rig-harness', '-f', file], {
          timeoutMs: 180_000,
        });
        if (res.code !== 0) throw new Error(`kubectl apply -f ${file} failed (${res.code}):\n${res.stderr}`);
      }
      const wait = await kubectl(['wait', '--for=condition=established', 'crd', '--all', '--timeout=120s'], {
        timeoutMs: 150_000,
      });
      if (wait.code !== 0) throw new Error(`CRDs not Established:\n${wait.stderr}${wait.stdout}`);
      crdsMs = Date.now() - crdStarted;
    }

    return {
      url,
      token,
      caPem,
      kubeconfig,
      dir,
      bin,
      pids: children.map((c) => c.pid).filter((p): p is number => typeof p === 'number'),
      timings: { etcdMs, apiserverMs, crdsMs },
      kubectl,
      request: (method, path, body) => restCall(url, caPem, token, method, path, body),
      applyYaml,
      async waitForWebhook(probe, timeoutMs = 30_000) {
        const deadline = Date.now() + timeoutMs;
        let lastErr: unknown;
        for (;;) {
          try {
            if (await probe()) return;
          } catch (err) {
            lastErr = err;
          }
          if (Date.now() > deadline) {
            throw new Error(
              `webhook not active after ${timeoutMs} ms${lastErr ? ` (last probe error: ${String(lastErr)})` : ''}`,
            );
          }
          await sleep(250);
        }
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function restCall(
  base: string,
  ca: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<{ status: number; body: any }> {
  return new Promise((resolveCall, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const contentType = method.toUpperCase() === 'PATCH' ? 'application/merge-patch+json' : 'application/json';
    const req = httpsRequest(
      new URL(path, base),
      {
        method,
        ca,
        timeout: timeoutMs,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(payload === undefined ? {} : { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* non-JSON (e.g. /readyz says "ok") */
          }
          resolveCall({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}
