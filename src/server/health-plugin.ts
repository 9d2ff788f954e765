import type { FastifyPluginAsync } from 'fastify';
import type { Metrics } from './metrics.ts';

/** Readiness is the conjunction of named conditions, e.g. "shutting down" or "cache synced". */
export class Readiness {
  private readonly blockers = new Map<string, string>();
  /** Set on SIGTERM: answers carry `Connection: close` so clients move to other replicas. */
  draining = false;
  block(name: string, why: string): void {
    this.blockers.set(name, why);
  }
  clear(name: string): void {
    this.blockers.delete(name);
  }
  get ready(): boolean {
    return this.blockers.size === 0;
  }
  get reasons(): string[] {
    return [...this.blockers.values()];
  }
}

export const healthPlugin: FastifyPluginAsync<{ readiness: Readiness; metrics: Metrics }> = async (app, opts) => {
  const status = { type: 'object', properties: { status: { type: 'string' }, reasons: { type: 'array', items: { type: 'string' } } } };
  app.get('/healthz', { schema: { response: { 200: status } } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { response: { 200: status, 503: status } } }, async (_req, reply) => {
    if (opts.readiness.ready) return { status: 'ready' };
    return reply.code(503).send({ status: 'not ready', reasons: opts.readiness.reasons });
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', opts.metrics.registry.contentType);
    return opts.metrics.registry.metrics();
  });
};
