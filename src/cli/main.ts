#!/usr/bin/env node
/** The `redis-istio-guard` executable: subcommands over the one rule engine. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { defaultServeSettings, parseClusterDomain, parseEnforcement, parseNamespaces, type ServeSettings } from '../config.ts';
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

/** Wraps a parser that throws Error so commander reports it as a bad argument. */
function checked<T>(parse: (value: string) => T) {
  return (value: string): T => {
    try {
      return parse(value);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

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
    .addOption(
      new Option('--cluster-checks <mode>', 'check destinations, ports and Gateways against a live cache: auto (on in a pod or with --kubeconfig), on, off')
        .env(`${ENV}CLUSTER_CHECKS`)
        .default('auto')
        .choices(['auto', 'on', 'off']),
    )
    .addOption(new Option('--kubeconfig <file>', 'kubeconfig for the cluster checks (otherwise in-cluster, then KUBECONFIG, then ~/.kube/config)').env(`${ENV}KUBECONFIG`))
    .addOption(new Option('--namespaces <list>', 'comma-separated namespaces to watch (default: all)').env(`${ENV}NAMESPACES`).argParser(checked(parseNamespaces)))
    .addOption(
      new Option('--cluster-domain <domain>', 'cluster domain of Service host names')
        .env(`${ENV}CLUSTER_DOMAIN`)
        .default('cluster.local')
        .argParser(checked(parseClusterDomain)),
    )
    .addOption(
      new Option('--on-cache-miss <policy>', 'when the cache cannot tell (not synced, namespace not watched): allow with a warning, or deny')
        .env(`${ENV}ON_CACHE_MISS`)
        .default('allow')
        .choices(['allow', 'deny']),
    )
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
        clusterChecks: o.clusterChecks,
        ...(o.kubeconfig ? { kubeconfig: o.kubeconfig } : {}),
        ...(o.namespaces && o.namespaces.length > 0 ? { namespaces: o.namespaces } : {}),
        clusterDomain: o.clusterDomain,
        onCacheMiss: o.onCacheMiss,
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
