/**
 * `redis-istio-guard serve`: start the HTTPS server, keep its certificate fresh, and stop
 * without failing an admission in flight.
 */
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import type { ServeSettings } from '../config.ts';
import { resolveClusterAccess } from '../cluster/credentials.ts';
import { CertManager } from '../certs/manager.ts';
import { KubeConfig } from '@kubernetes/client-node';
import { ClusterCache, kubeTransport, type Timings, type Transport } from '../cluster/informers.ts';
import type { ClusterView } from '../rules/context.ts';
import { buildApp } from './app.ts';
import { Readiness } from './health-plugin.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { checkPair, readPair, selfSignedPair, swapCertificate, watchPair, type KeyPair } from './tls.ts';

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  logger: Logger;
  metrics: Metrics;
  readiness: Readiness;
  /** The certificate in use at start (PEM), e.g. for a caBundle in tests. */
  certificate: string;
  /** The live cluster cache, when cluster checks are on. */
  cluster?: ClusterCache;
  /** Drain and stop: not ready at once, answer for shutdownDelaySeconds, finish in-flight, close. */
  shutdown(reason: string): Promise<void>;
}

export interface ServeDeps {
  logger?: Logger;
  cluster?: () => ClusterView | undefined;
  clusterDomain?: string;
  /** Extra readiness conditions (e.g. cache sync) are set by the caller on this object. */
  readiness?: Readiness;
  /** Feeds the cluster cache from this transport instead of a kubeconfig (tests). */
  clusterTransport?: Transport;
  clusterTimings?: Partial<Timings>;
}

/**
 * Starts the cluster cache when cluster checks are on (see resolveClusterAccess). Readiness is
 * blocked at once, before the server listens, until every informer has finished its first list.
 */
function startClusterCache(settings: ServeSettings, deps: ServeDeps, logger: Logger, metrics: Metrics, readiness: Readiness): ClusterCache | undefined {
  let transport = deps.clusterTransport;
  if (!transport) {
    const access = resolveClusterAccess({ mode: settings.clusterChecks ?? 'off', kubeconfig: settings.kubeconfig });
    if (!access.enabled) {
      logger.info({ clusterChecks: settings.clusterChecks ?? 'off' }, access.reason);
      return undefined;
    }
    logger.info({ credentials: access.source, server: access.kubeConfig.getCurrentCluster()?.server, namespaces: settings.namespaces ?? 'all' }, 'cluster checks on');
    transport = kubeTransport(access.kubeConfig);
  }
  const cache = new ClusterCache({
    transport,
    namespaces: settings.namespaces,
    onCacheMiss: settings.onCacheMiss ?? 'allow',
    registry: metrics.registry,
    readiness,
    log: logger,
    ...(deps.clusterTimings ? { timings: deps.clusterTimings } : {}),
  });
  const started = Date.now();
  cache.start();
  void cache.synced().then(() => {
    const objects = Object.fromEntries(
      (['Service', 'Gateway', 'RedisEnterpriseCluster', 'RedisEnterpriseDatabase', 'Namespace'] as const).map((k) => [k, cache.index.size(k)]),
    );
    logger.info({ ms: Date.now() - started, objects, absent: cache.status().filter((r) => r.absent).map((r) => r.kind) }, 'cluster cache synced');
  });
  return cache;
}

/**
 * The selfSigned mode's manager (src/certs): keeps the CA and serving certificate in a Secret,
 * publishes the CA bundle into our webhook configurations and renews before expiry. A failure
 * never stops serving: the mounted certificate stays in use and the manager tries again.
 */
function startCertificateManager(
  settings: ServeSettings,
  logger: Logger,
  onServingPair: (pair: KeyPair) => void,
  onError: (err: unknown) => void,
): () => void {
  const certs = settings.certificates;
  if (!certs) return () => {};
  const kubeConfig = new KubeConfig();
  if (settings.kubeconfig) kubeConfig.loadFromFile(settings.kubeconfig);
  else kubeConfig.loadFromDefault();
  const manager = new CertManager({
    kubeConfig,
    namespace: certs.namespace,
    secretName: certs.secretName,
    names: certs.names,
    validatingWebhookConfigurations: certs.validatingWebhookConfigurations,
    mutatingWebhookConfigurations: certs.mutatingWebhookConfigurations,
    onServingPair,
    onError,
    log: (msg, fields) => logger.info(fields ?? {}, msg),
  });
  let retry: NodeJS.Timeout | undefined;
  let stopped = false;
  const start = () => {
    manager.start().then(
      (state) => logger.info({ secret: `${certs.namespace}/${certs.secretName}`, resourceVersion: state.resourceVersion }, 'certificate manager started'),
      (err) => {
        onError(err);
        if (!stopped) retry = setTimeout(start, 30_000).unref();
      },
    );
  };
  start();
  return () => {
    stopped = true;
    if (retry) clearTimeout(retry);
    manager.stop();
  };
}

async function initialPair(settings: ServeSettings): Promise<KeyPair> {
  if (settings.tlsCertFile && settings.tlsKeyFile) return readPair(settings.tlsCertFile, settings.tlsKeyFile);
  if (settings.tlsCertFile || settings.tlsKeyFile) throw new Error('--tls-cert-file and --tls-key-file go together');
  if (settings.selfSigned) return selfSignedPair();
  throw new Error('no serving certificate: pass --tls-cert-file and --tls-key-file, or --self-signed for a local run');
}

export async function startServer(settings: ServeSettings, deps: ServeDeps = {}): Promise<RunningServer> {
  // Synchronous log writes, on purpose: asynchronous ones buffer in memory without bound when the
  // log reader falls behind (measured: RSS grew by ~180 MiB under load in bench/scale.ts).
  const logger = deps.logger ?? pino({ level: settings.logLevel, base: { app: 'redis-istio-guard' } });
  const pair = await initialPair(settings);
  const { notAfter } = checkPair(pair);
  const metrics = createMetrics();
  metrics.certificateExpiry.set(notAfter.getTime() / 1000);
  const readiness = deps.readiness ?? new Readiness();
  const cache = deps.cluster ? undefined : startClusterCache(settings, deps, logger, metrics, readiness);
  const cluster = deps.cluster ?? (cache ? () => cache.index : undefined);
  const stopCache = async () => {
    await cache?.stop();
  };
  let app: FastifyInstance;
  let address: string;
  try {
    app = await buildApp({
      logger,
      metrics,
      readiness,
      engine: { enforcement: settings.enforcement },
      mutate: settings.mutate,
      bodyLimit: settings.bodyLimit,
      clusterDomain: deps.clusterDomain ?? settings.clusterDomain ?? 'cluster.local',
      ...(cluster ? { cluster } : {}),
      tls: pair,
    });
    address = await app.listen({ port: settings.port, host: settings.host });
  } catch (err) {
    await stopCache();
    throw err;
  }
  logger.info({ address, mutate: settings.mutate, selfSigned: !settings.tlsCertFile, notAfter }, 'serving');

  /** Every certificate change, from the files or from the manager, goes through here. */
  const install = (next: KeyPair, source: string) => {
    const { notAfter: nextNotAfter } = checkPair(next);
    swapCertificate(app.server as unknown as import('node:tls').Server, next);
    metrics.certificateExpiry.set(nextNotAfter.getTime() / 1000);
    metrics.certificateReloads.inc({ result: 'ok' });
    logger.info({ notAfter: nextNotAfter, source }, 'serving certificate replaced');
  };
  const reloadFailed = (err: unknown, source: string) => {
    metrics.certificateReloads.inc({ result: 'error' });
    logger.warn({ err: String(err), source }, 'serving certificate not replaced; keeping the current one');
  };

  let stopWatching = () => {};
  if (settings.tlsCertFile && settings.tlsKeyFile) {
    stopWatching = watchPair(settings.tlsCertFile, settings.tlsKeyFile, pair, {
      onReload: (next) => install(next, 'files'),
      onError: (err) => reloadFailed(err, 'files'),
    });
  }
  const stopCertificates = startCertificateManager(settings, logger, (next) => {
    try {
      install(next, 'certificate manager');
    } catch (err) {
      reloadFailed(err, 'certificate manager');
    }
  }, (err) => reloadFailed(err, 'certificate manager'));

  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string) => {
    stopping ??= (async () => {
      readiness.block('shutdown', `shutting down (${reason})`);
      readiness.draining = true;
      logger.info({ reason, delaySeconds: settings.shutdownDelaySeconds }, 'not ready; draining before close');
      await new Promise((r) => setTimeout(r, settings.shutdownDelaySeconds * 1000));
      stopWatching();
      stopCertificates();
      // close() stops accepting, closes idle keep-alive sockets and waits for requests in flight.
      await app.close();
      await stopCache();
      logger.info('stopped');
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    })();
    return stopping;
  };
  return { app, url: address, logger, metrics, readiness, certificate: pair.cert, shutdown, ...(cache ? { cluster: cache } : {}) };
}
