/**
 * The HTTPS app: small encapsulated fastify plugins, each with its own schema, sharing state
 * only through the options they are given.
 */
import fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import { admissionPlugin } from './admission-plugin.ts';
import { healthPlugin, type Readiness } from './health-plugin.ts';
import type { Metrics } from './metrics.ts';
import type { EngineOptions } from '../rules/engine.ts';
import type { ClusterView } from '../rules/context.ts';
import type { KeyPair } from './tls.ts';

export interface AppOptions {
  logger: Logger;
  metrics: Metrics;
  readiness: Readiness;
  engine: EngineOptions;
  mutate: boolean;
  bodyLimit: number;
  clusterDomain: string;
  /** Supplies the cluster view at decision time (its contents change as caches sync). */
  cluster?: () => ClusterView | undefined;
  tls: KeyPair;
}

/** Longer than the API server's 90 s idle reuse, so we never close a socket it is about to use. */
export const KEEP_ALIVE_MS = 120_000;

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const serverOptions: FastifyServerOptions & { https: object } = {
    loggerInstance: opts.logger,
    // One log line per admission comes from the handler; fastify's own request lines are noise.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.bodyLimit,
    keepAliveTimeout: KEEP_ALIVE_MS,
    // Headers arrive at once from the API server; a slow one is not an API server.
    requestTimeout: 60_000,
    // Late requests during shutdown are still answered; see lifecycle.ts.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { coerceTypes: false, allErrors: false } },
    https: { key: opts.tls.key, cert: opts.tls.cert, minVersion: 'TLSv1.2' },
  };
  const app = fastify(serverOptions) as unknown as FastifyInstance;
  app.server.headersTimeout = 32_000;
  app.addHook('onSend', async (_req, reply, payload) => {
    if (opts.readiness.draining) reply.header('connection', 'close');
    return payload;
  });
  await app.register(healthPlugin, { readiness: opts.readiness, metrics: opts.metrics });
  await app.register(admissionPlugin, {
    metrics: opts.metrics,
    engine: opts.engine,
    mutate: opts.mutate,
    clusterDomain: opts.clusterDomain,
    ...(opts.cluster ? { cluster: opts.cluster } : {}),
  });
  return app;
}
