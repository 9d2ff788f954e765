/** Prometheus metrics, one registry per server instance (no global state). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  admissions: Counter<'kind' | 'operation' | 'allowed' | 'endpoint'>;
  latency: Histogram<'kind' | 'operation' | 'allowed' | 'endpoint'>;
  findings: Counter<'rule' | 'severity'>;
  badRequests: Counter<'reason'>;
  certificateExpiry: Gauge;
  certificateReloads: Counter<'result'>;
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'redis_istio_guard_' });
  const labels = ['kind', 'operation', 'allowed', 'endpoint'] as const;
  return {
    registry,
    admissions: new Counter({
      name: 'redis_istio_guard_admission_requests_total',
      help: 'Admission reviews answered, by kind, operation and decision.',
      labelNames: labels,
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'redis_istio_guard_admission_duration_seconds',
      help: 'Time from request to answer; buckets reach past the 30 s webhook timeout limit.',
      labelNames: labels,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    findings: new Counter({
      name: 'redis_istio_guard_findings_total',
      help: 'Findings reported, by rule id and severity.',
      labelNames: ['rule', 'severity'] as const,
      registers: [registry],
    }),
    badRequests: new Counter({
      name: 'redis_istio_guard_bad_requests_total',
      help: 'Requests refused with 400, by reason.',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    certificateExpiry: new Gauge({
      name: 'redis_istio_guard_certificate_expiry_timestamp_seconds',
      help: 'Not-after time of the serving certificate in use.',
      registers: [registry],
    }),
    certificateReloads: new Counter({
      name: 'redis_istio_guard_certificate_reloads_total',
      help: 'Serving certificate reloads, by result.',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
  };
}
