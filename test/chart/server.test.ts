/**
 * The chart's container settings against the real executable: the server is started with the
 * args and environment of the rendered Deployment (selfSigned mode, the rendered Secret's files in
 * place of the volume), and answers the probes' paths over HTTPS with a certificate that the
 * rendered caBundle trusts for <svc>.<ns>.svc. On SIGTERM it exits well within the grace period
 * that is left after the preStop sleep.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../harness/gobuild.ts';
import { ensureHelm, helmTemplate, NAMESPACE } from '../harness/helm/helm.ts';

t.setTimeout(30 * 60_000);

const helm = await ensureHelm();
t.teardown(() => helm.cleanup());

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });

function get(port: number, path: string, ca: string, servername: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, ca, servername, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

t.test('the rendered Deployment starts the server and its probes pass', async (t) => {
  const r = await helmTemplate(helm, { 'mutation.enabled': 'true' });
  const secret = r.one('Secret');
  const dep = r.one('Deployment');
  const pod = dep.spec.template.spec;
  const c = pod.containers[0];
  const caBundle = Buffer.from(r.one('ValidatingWebhookConfiguration').webhooks[0].clientConfig.caBundle, 'base64').toString();
  const svcHost = `${r.one('Service').metadata.name}.${NAMESPACE}.svc`;

  const dir = mkdtempSync(join(tmpdir(), 'rig-chart-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const key of ['tls.crt', 'tls.key', 'ca.crt']) writeFileSync(join(dir, key), Buffer.from(secret.data[key], 'base64'));

  const port = await freePort();
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  for (const e of c.env as { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath?: string } } }[]) {
    // fieldRef values come from the kubelet: fill them as it would.
    const field = e.valueFrom?.fieldRef?.fieldPath;
    if (field === 'metadata.namespace') env[e.name] = NAMESPACE;
    else if (field === 'metadata.name') env[e.name] = 'rig-redis-istio-guard-0';
    if (e.value !== undefined) env[e.name] = e.value.replace('/etc/redis-istio-guard/tls', dir);
  }
  // Only the address differs from the pod: a free loopback port instead of 0.0.0.0:8443.
  env.REDIS_ISTIO_GUARD_PORT = String(port);
  env.REDIS_ISTIO_GUARD_HOST = '127.0.0.1';
  env.REDIS_ISTIO_GUARD_LOG_LEVEL = 'warn';

  const child = spawn(process.execPath, [join(repoRoot, 'src', 'cli', 'main.ts'), ...c.args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  const readiness = c.readinessProbe.httpGet.path as string;
  const liveness = c.livenessProbe.httpGet.path as string;
  let ready = { status: 0, body: '' };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && child.exitCode === null) {
    ready = await get(port, readiness, caBundle, svcHost).catch(() => ({ status: 0, body: '' }));
    if (ready.status === 200) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(ready.status, 200, `GET ${readiness} over HTTPS, trusted by the caBundle for ${svcHost}: ${output}`);
  t.equal((await get(port, liveness, caBundle, svcHost)).status, 200, `GET ${liveness}`);

  // SIGTERM after preStop: the server drains for its shutdown delay, then exits in time.
  const stopAt = Date.now();
  child.kill('SIGTERM');
  const code = await exited;
  const seconds = (Date.now() - stopAt) / 1000;
  t.equal(code, 0, 'clean exit');
  const budget = pod.terminationGracePeriodSeconds - c.lifecycle.preStop.sleep.seconds;
  t.ok(seconds < budget, `stopped in ${seconds.toFixed(1)} s, within the ${budget} s left after preStop`);
  t.ok(seconds >= Number(env.REDIS_ISTIO_GUARD_SHUTDOWN_DELAY) - 0.5, 'kept answering for the shutdown delay');
});
