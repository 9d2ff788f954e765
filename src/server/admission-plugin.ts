/** POST /validate and POST /mutate: AdmissionReview in, AdmissionReview out. */
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import {
  admissionReviewSchema,
  decisionResponse,
  parseGoDuration,
  reviewResponse,
  timeoutQuerySchema,
  type AdmissionResponse,
  type AdmissionReview,
} from '../admission/review.ts';
import { recSuffixMutation } from '../admission/mutation.ts';
import type { ClusterView, RuleContext } from '../rules/context.ts';
import { decide, type Decision, type EngineOptions } from '../rules/engine.ts';
import { classify, isRecord } from '../rules/object.ts';
import type { Metrics } from './metrics.ts';

export interface AdmissionPluginOptions {
  metrics: Metrics;
  engine: EngineOptions;
  mutate: boolean;
  clusterDomain: string;
  cluster?: () => ClusterView | undefined;
}

type Endpoint = 'validate' | 'mutate';
type ReviewRequest = FastifyRequest<{ Body: AdmissionReview; Querystring: { timeout?: string } }>;

class BadReview extends Error {}

export const admissionPlugin: FastifyPluginAsync<AdmissionPluginOptions> = async (app, opts) => {
  // Everything malformed is a 400 with a JSON body that says what is wrong; the API server
  // treats any non-200 as a failed call and applies the webhook's failurePolicy.
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 500) {
      req.log.error({ err }, 'admission handler failed');
      return reply.code(500).send({ error: 'Internal Server Error', message: 'the webhook failed to judge this request' });
    }
    const reason = err.validation ? 'schema' : err instanceof BadReview ? 'review' : (err.code ?? 'other');
    opts.metrics.badRequests.inc({ reason });
    req.log.warn({ reason, message: err.message }, 'bad admission request');
    return reply.code(400).send({ error: 'Bad Request', code: err.code ?? 'BAD_ADMISSION_REVIEW', message: err.message });
  });

  // Plain JSON.parse: fastify's default parser also scans every body for prototype keys, which
  // costs a sixth of the CPU here. Reviews are only read, never merged into other objects, so a
  // "__proto__" key stays an inert own property.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    if (body === '') return done(Object.assign(new Error('body is empty; expected an AdmissionReview'), { statusCode: 400, code: 'FST_ERR_CTP_EMPTY_JSON_BODY' }), undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch (err) {
      done(Object.assign(new Error(`body is not valid JSON: ${(err as Error).message}`), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' }), undefined);
    }
  });

  const context = (namespace: string): RuleContext => {
    const cluster = opts.cluster?.();
    return { namespace, clusterDomain: opts.clusterDomain, ...(cluster ? { cluster } : {}) };
  };

  const judge = (endpoint: Endpoint, review: AdmissionReview): { response: AdmissionResponse; decision?: Decision } => {
    const r = review.request;
    const kind = classify(r.kind);
    // Kinds and versions that are not ours, DELETE and CONNECT: allowed without a finding.
    if (!kind || (r.operation !== 'CREATE' && r.operation !== 'UPDATE')) return { response: { uid: r.uid, allowed: true } };
    if (!isRecord(r.object)) {
      const err = new BadReview(`request.object must be an object for ${r.operation}`);
      throw Object.assign(err, { statusCode: 400, code: 'BAD_ADMISSION_REVIEW' });
    }
    const namespace = r.namespace ?? (isRecord(r.object.metadata) && typeof r.object.metadata.namespace === 'string' ? r.object.metadata.namespace : '');
    const ctx = context(namespace);
    if (endpoint === 'mutate') {
      if (!opts.mutate || kind !== 'RedisEnterpriseCluster') return { response: { uid: r.uid, allowed: true } };
      const m = recSuffixMutation(r.object, ctx, opts.engine);
      const response: AdmissionResponse = { uid: r.uid, allowed: true };
      if (m.patch.length > 0) {
        response.patchType = 'JSONPatch';
        response.patch = Buffer.from(JSON.stringify(m.patch)).toString('base64');
        response.warnings = m.warnings;
      }
      return { response };
    }
    const decision = decide(
      { operation: r.operation, kind, object: r.object, oldObject: isRecord(r.oldObject) ? r.oldObject : undefined },
      ctx,
      opts.engine,
    );
    return { response: decisionResponse(r.uid, decision), decision };
  };

  const handler = (endpoint: Endpoint) => async (req: ReviewRequest, reply: FastifyReply) => {
    const started = process.hrtime.bigint();
    const r = req.body.request;
    const { response, decision } = judge(endpoint, req.body);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const labels = { kind: classify(r.kind) ?? 'other', operation: r.operation, allowed: String(response.allowed), endpoint };
    opts.metrics.admissions.inc(labels);
    opts.metrics.latency.observe(labels, seconds);
    for (const f of decision?.findings ?? []) opts.metrics.findings.inc({ rule: f.rule, severity: f.severity });
    const budgetMs = parseGoDuration(req.query.timeout);
    const durationMs = Math.round(reply.elapsedTime * 1000) / 1000;
    req.log.info(
      {
        uid: r.uid,
        endpoint,
        kind: `${r.kind.group}/${r.kind.version}/${r.kind.kind}`,
        namespace: r.namespace ?? '',
        name: r.name ?? '',
        operation: r.operation,
        dryRun: r.dryRun === true,
        allowed: response.allowed,
        rules: [...new Set(decision?.findings.map((f) => f.rule) ?? [])],
        patched: response.patch !== undefined,
        durationMs,
        ...(budgetMs !== undefined && durationMs > budgetMs ? { overBudgetMs: budgetMs } : {}),
      },
      'admission',
    );
    return reviewResponse(response);
  };

  const schema = { body: admissionReviewSchema, querystring: timeoutQuerySchema };
  app.post('/validate', { schema }, handler('validate'));
  app.post('/mutate', { schema }, handler('mutate'));
};
