#!/usr/bin/env node
/** The `redis-istio-guard` executable: subcommands over the one rule engine. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { defaultServeSettings, parseEnforcement, type ServeSettings } from '../config.ts';
import { builtinRules } from '../rules/engine.ts';
import { startServer } from '../server/serve.ts';
import { registerCheck } from './check.ts';

const ENV = 'REDIS_ISTIO_GUARD_';

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return n;
  };
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function buildProgram(): Command {
  const program = new Command('redis-istio-guard')
    .description('Admission webhook and offline checker for Redis Enterprise behind Istio')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('serve')
    .description('serve POST /validate and /mutate over HTTPS')
    .addOption(new Option('--port <port>', 'HTTPS port').env(`${ENV}PORT`).default(defaultServeSettings.port).argParser(integer(0, 65535)))
    .addOption(new Option('--host <addr>', 'address to listen on').env(`${ENV}HOST`).default(defaultServeSettings.host))
    .addOption(new Option('--tls-cert-file <file>', 'serving certificate (PEM); reloaded when it changes').env(`${ENV}TLS_CERT_FILE`))
    .addOption(new Option('--tls-key-file <file>', 'serving key (PEM)').env(`${ENV}TLS_KEY_FILE`))
    .addOption(new Option('--self-signed', 'make an in-memory certificate for localhost and 127.0.0.1').env(`${ENV}SELF_SIGNED`))
    .addOption(new Option('--mutate', 'rewrite hyphen REC suffixes to the dot form on POST /mutate').env(`${ENV}MUTATE`))
    .addOption(
      new Option('--body-limit <bytes>', 'largest request body accepted')
        .env(`${ENV}BODY_LIMIT`)
        .default(defaultServeSettings.bodyLimit)
        .argParser(integer(1024, 64 * 1024 * 1024)),
    )
    .addOption(
      new Option('--shutdown-delay <seconds>', 'seconds to keep answering after SIGTERM, not ready, before closing')
        .env(`${ENV}SHUTDOWN_DELAY`)
        .default(defaultServeSettings.shutdownDelaySeconds)
        .argParser(integer(0, 300)),
    )
    .addOption(new Option('--log-level <level>', 'pino log level').env(`${ENV}LOG_LEVEL`).default('info').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .addOption(new Option('--rule <id=mode>', 'set a rule to deny, warn or off (repeatable; env: comma-separated)').env(`${ENV}RULES`).argParser(collect))
    .action(async (o) => {
      const settings: ServeSettings = {
        port: o.port,
        host: o.host,
        tlsCertFile: o.tlsCertFile,
        tlsKeyFile: o.tlsKeyFile,
        selfSigned: o.selfSigned === true || o.selfSigned === 'true',
        mutate: o.mutate === true || o.mutate === 'true',
        bodyLimit: o.bodyLimit,
        shutdownDelaySeconds: o.shutdownDelay,
        logLevel: o.logLevel,
        enforcement: parseEnforcement(typeof o.rule === 'string' ? [o.rule] : (o.rule ?? []), builtinRules.map((r) => r.id)),
      };
      const server = await startServer(settings);
      for (const signal of ['SIGTERM', 'SIGINT'] as const)
        process.once(signal, () => {
          void server.shutdown(signal).then(() => process.exit(0));
        });
    });

  registerCheck(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (e.code?.startsWith('commander.')) return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2;
    process.stderr.write(`redis-istio-guard: ${e.message ?? String(err)}\n`);
    return 2;
  }
}

const code = await main(process.argv.slice(2));
if (code !== 0) process.exit(code);
