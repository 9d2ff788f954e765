import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect } from 'node:tls';
import { pino } from 'pino';
import { defaultServeSettings } from '../../../src/config.ts';
import { selfSignedPair } from '../../../src/server/tls.ts';
import { startServer } from '../../../src/server/serve.ts';
import { rec } from '../../fixtures/objects.ts';
import { admissionReview, get, post } from '../../helpers/review.ts';

const quiet = pino({ level: 'silent' });

/** The certificate a fresh TLS handshake presents. */
function presentedCert(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((res, rej) => {
    const s = connect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
      res(s.getPeerX509Certificate()?.fingerprint256 ?? '');
      s.end();
    });
    s.on('error', rej);
  });
}

t.test('a certificate file swapped while requests run is picked up without a dropped request', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rig-cert-'));
  const first = await selfSignedPair();
  const second = await selfSignedPair();
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  writeFileSync(certFile, first.cert);
  writeFileSync(keyFile, first.key);
  const s = await startServer(
    { ...defaultServeSettings, port: 0, host: '127.0.0.1', tlsCertFile: certFile, tlsKeyFile: keyFile, shutdownDelaySeconds: 0 },
    { logger: quiet },
  );
  t.teardown(() => s.shutdown('test end'));
  const before = await presentedCert(s.url);

  // Keep-alive requests trusting both certificates run while the files change under them.
  const ca = `${first.cert}\n${second.cert}`;
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  let stop = false;
  const results: number[] = [];
  const loop = async () => {
    while (!stop) results.push((await post(s.url, ca, '/validate', admissionReview(rec()), { agent })).status);
  };
  const loops = [loop(), loop(), loop()];
  await new Promise((r) => setTimeout(r, 200));
  // Write the new pair the way Kubernetes does: new files, then an atomic rename.
  writeFileSync(`${keyFile}.new`, second.key);
  writeFileSync(`${certFile}.new`, second.cert);
  renameSync(`${keyFile}.new`, keyFile);
  renameSync(`${certFile}.new`, certFile);
  let after = before;
  for (let i = 0; i < 50 && after === before; i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await presentedCert(s.url);
  }
  stop = true;
  await Promise.all(loops);
  agent.destroy();
  t.not(after, before, 'new handshakes present the new certificate');
  t.ok(results.length > 10, `${results.length} requests ran during the swap`);
  t.ok(results.every((c) => c === 200), 'every request succeeded');
  const metrics = (await get(s.url, second.cert, '/metrics')).text;
  t.match(metrics, /redis_istio_guard_certificate_reloads_total\{result="ok"\} 1/);

  // A broken pair is not served: the last good one stays.
  writeFileSync(certFile, 'not a certificate');
  await new Promise((r) => setTimeout(r, 500));
  t.equal(await presentedCert(s.url), after, 'a bad file does not replace the good certificate');
});

t.test('TLS 1.2 or later only', async (t) => {
  const s = await startServer({ ...defaultServeSettings, port: 0, host: '127.0.0.1', selfSigned: true, shutdownDelaySeconds: 0 }, { logger: quiet });
  t.teardown(() => s.shutdown('test end'));
  const { port } = new URL(s.url);
  const handshake = (maxVersion: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3') =>
    new Promise<string>((res, rej) => {
      const socket = connect({ host: '127.0.0.1', port: Number(port), ca: s.certificate, servername: 'localhost', minVersion: 'TLSv1', maxVersion }, () => {
        res(socket.getProtocol() ?? '');
        socket.end();
      });
      socket.on('error', rej);
    });
  t.equal(await handshake('TLSv1.3'), 'TLSv1.3');
  t.equal(await handshake('TLSv1.2'), 'TLSv1.2');
  await t.rejects(handshake('TLSv1.1'), 'TLS 1.1 is refused');
});

t.test('shutdown: not ready at once, keeps answering, finishes in-flight requests', async (t) => {
  const s = await startServer({ ...defaultServeSettings, port: 0, host: '127.0.0.1', selfSigned: true, shutdownDelaySeconds: 1 }, { logger: quiet });
  const agent = new Agent({ keepAlive: true });
  const inFlight = Array.from({ length: 20 }, () => post(s.url, s.certificate, '/validate', admissionReview(rec()), { agent }));
  const stopping = s.shutdown('test');
  const ready = await get(s.url, s.certificate, '/readyz');
  t.equal(ready.status, 503, 'not ready during the delay');
  t.match(ready.body.reasons, [/shutting down/]);
  const late = await post(s.url, s.certificate, '/validate', admissionReview(rec()));
  t.equal(late.status, 200, 'a request during the delay is still answered');
  t.equal(late.headers.connection, 'close', 'and asks the client to reconnect elsewhere');
  const statuses = (await Promise.all(inFlight)).map((r) => r.status);
  t.ok(statuses.every((c) => c === 200), 'no admission in flight failed');
  await stopping;
  agent.destroy();
  await t.rejects(get(s.url, s.certificate, '/healthz'), 'closed after the delay');
});

t.test('SIGTERM to the real executable drains and exits 0', async (t) => {
  const main = resolve(import.meta.dirname, '../../../src/cli/main.ts');
  const child = spawn(process.execPath, [main, 'serve', '--self-signed', '--host', '127.0.0.1', '--port', '0', '--shutdown-delay', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  const url = await new Promise<string>((res, rej) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /"address":"(https:\/\/[^"]+)"/.exec(buf);
      if (m?.[1]) res(m[1]);
    });
    child.on('exit', (code) => rej(new Error(`exited early with ${code}`)));
  });
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  // Trust is not the point here: the certificate is made in memory by the child.
  const insecure = (path: string, body?: unknown) =>
    new Promise<number>((res, rej) => {
      const req = request(new URL(path, url), { method: body ? 'POST' : 'GET', rejectUnauthorized: false, headers: body ? { 'content-type': 'application/json' } : {} }, (r) => {
        r.resume();
        r.on('end', () => res(r.statusCode ?? 0));
      });
      req.on('error', rej);
      req.end(body ? JSON.stringify(body) : undefined);
    });
  t.equal(await insecure('/readyz'), 200);
  child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(await insecure('/readyz'), 503, 'not ready right after SIGTERM');
  t.equal(await insecure('/validate', admissionReview(rec())), 200, 'still answering admissions');
  t.equal(await exited, 0, 'exits 0 after draining');
});
