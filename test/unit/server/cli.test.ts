import t from 'tap';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const main = resolve(import.meta.dirname, '../../../src/cli/main.ts');

/** Runs `serve` until it logs that it serves (then stops it), or until it exits on its own. */
function serve(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [main, 'serve', '--host', '127.0.0.1', '--port', '0', '--shutdown-delay', '0', ...args], {
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    child.stdout.on('data', (d) => {
      stdout += d;
      // One SIGTERM, as Kubernetes sends; a second one would end the process at once.
      if (!signalled && stdout.includes('"msg":"serving"')) {
        signalled = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

t.test('bad settings exit 2 with one line that says why', async (t) => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [[], {}, /no serving certificate: pass --tls-cert-file and --tls-key-file, or --self-signed/],
    [['--tls-cert-file', '/nonexistent.crt'], {}, /--tls-cert-file and --tls-key-file go together/],
    [['--tls-cert-file', '/nonexistent.crt', '--tls-key-file', '/nonexistent.key'], {}, /ENOENT/],
    [['--self-signed', '--port', '70000'], {}, /must be an integer from 0 to 65535/],
    [['--self-signed', '--rule', 'nope=deny'], {}, /unknown rule "nope"/],
    [['--self-signed'], { REDIS_ISTIO_GUARD_RULES: 'vs-host=maybe' }, /mode must be deny, warn or off/],
    [['--self-signed', '--mutate', 'perhaps'], {}, /must be true or false/],
    [['--self-signed', '--no-such-flag'], {}, /unknown option/],
    [['--self-signed', '--cert-secret', 'x'], {}, /--cert-secret needs --cert-namespace/],
  ];
  for (const [args, env, message] of cases) {
    const r = await serve(args, env);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, message);
  }
});

t.test('switches read the value of their environment variable', async (t) => {
  const cases: [Record<string, string>, string[], boolean][] = [
    [{ REDIS_ISTIO_GUARD_MUTATE: 'false' }, [], false],
    [{ REDIS_ISTIO_GUARD_MUTATE: 'true' }, [], true],
    [{}, ['--mutate'], true],
    [{}, [], false],
  ];
  for (const [env, args, want] of cases) {
    const r = await serve(['--self-signed', ...args], env);
    t.equal(r.code, 0, JSON.stringify(env));
    t.match(r.stdout, `"mutate":${want}`, `${JSON.stringify(env)} ${args.join(' ')} → mutate ${want}`);
  }
});
