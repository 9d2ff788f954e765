#!/usr/bin/env node
/** The `redis-istio-guard` executable: subcommands over the one rule engine. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { defaultServeSettings, parseClusterDomain, parseEnforcement, parseNamespaces, type ServeSettings } from '../config.ts';
import { builtinRules } from '../rules/engine.ts';
import { startServer, type RunningServer } from '../server/serve.ts';
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

/**
 * A switch that also reads its environment variable's value: commander's plain boolean flags
 * turn on whenever the variable exists, so MUTATE=false would have meant true.
 */
function booleanOption(flag: string, description: string, env: string): Option {
  return new Option(`${flag} [enabled]`, `${description} (true or false)`)
    .env(env)
    .preset('true')
    .argParser((value: string) => {
      const v = value.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off', ''].includes(v)) return false;
      throw new InvalidArgumentError('must be true or false');
    });
}

const list = (value: string) => value.split(',').map((s) => s.trim()).filter(Boolean);

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
    .addOption(booleanOption('--self-signed', 'make an in-memory certificate for localhost and 127.0.0.1', `${ENV}SELF_SIGNED`))
    .addOption(booleanOption('--mutate', 'rewrite hyphen REC suffixes to the dot form on POST /mutate', `${ENV}MUTATE`))
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
    .addOption(new Option('--cert-secret <name>', 'selfSigned mode: the Secret holding the CA and serving certificate, kept by this process').env(`${ENV}CERT_SECRET`))
    .addOption(new Option('--cert-namespace <ns>', 'namespace of --cert-secret').env('POD_NAMESPACE'))
    .addOption(new Option('--cert-names <list>', 'comma-separated DNS names of the serving certificate').env(`${ENV}CERT_NAMES`).argParser(list))
    .addOption(
      new Option('--validating-webhook-configuration <name>', 'whose caBundle the certificate manager keeps').env(`${ENV}VALIDATING_WEBHOOK_CONFIGURATION`),
    )
    .addOption(new Option('--mutating-webhook-configuration <name>', 'likewise, when mutation is on').env(`${ENV}MUTATING_WEBHOOK_CONFIGURATION`))
    .action(async (o) => {
      if (o.certSecret && (!o.certNamespace || !o.certNames?.length))
        throw new Error('--cert-secret needs --cert-namespace (POD_NAMESPACE) and --cert-names');
      const settings: ServeSettings = {
        port: o.port,
        host: o.host,
        tlsCertFile: o.tlsCertFile,
        tlsKeyFile: o.tlsKeyFile,
        selfSigned: o.selfSigned === true,
        mutate: o.mutate === true,
        bodyLimit: o.bodyLimit,
        shutdownDelaySeconds: o.shutdownDelay,
        logLevel: o.logLevel,
        enforcement: parseEnforcement(typeof o.rule === 'string' ? [o.rule] : (o.rule ?? []), builtinRules.map((r) => r.id)),
        clusterChecks: o.clusterChecks,
        ...(o.kubeconfig ? { kubeconfig: o.kubeconfig } : {}),
        ...(o.namespaces && o.namespaces.length > 0 ? { namespaces: o.namespaces } : {}),
        clusterDomain: o.clusterDomain,
        onCacheMiss: o.onCacheMiss,
        ...(o.certSecret
          ? {
              certificates: {
                secretName: o.certSecret,
                namespace: o.certNamespace,
                names: o.certNames,
                validatingWebhookConfigurations: o.validatingWebhookConfiguration ? [o.validatingWebhookConfiguration] : [],
                mutatingWebhookConfigurations: o.mutatingWebhookConfiguration ? [o.mutatingWebhookConfiguration] : [],
              },
            }
          : {}),
      };
      // Handlers come first: a SIGTERM that arrives while the server starts still drains it.
      let server: RunningServer | undefined;
      let requested: string | undefined;
      const stop = (reason: string) => void server?.shutdown(reason).then(() => process.exit(0));
      for (const signal of ['SIGTERM', 'SIGINT'] as const)
        process.once(signal, () => {
          requested = signal;
          stop(signal);
        });
      server = await startServer(settings);
      if (requested) stop(requested);
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
