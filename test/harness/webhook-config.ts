/**
 * The Validating and Mutating webhook configurations a user registers for redis-istio-guard,
 * pointing at a URL (the test webhook on 127.0.0.1) with its caBundle.
 *
 * When the Helm chart exists (charts/redis-istio-guard), these should be rendered from it instead,
 * so that the chart's rules are the ones under test; until then this is the one definition.
 */

export const VALIDATING_WEBHOOK = 'validate.redis-istio-guard.io';
export const MUTATING_WEBHOOK = 'mutate.redis-istio-guard.io';
/** metadata.name of both configurations. */
export const CONFIGURATION_NAME = 'redis-istio-guard';

export type FailurePolicy = 'Fail' | 'Ignore';

export interface WebhookTarget {
  /** Base URL of the webhook server, e.g. https://127.0.0.1:40123 (no path). */
  url: string;
  /** PEM of the CA (or self-signed certificate) that verifies the server. */
  caPem: string;
  failurePolicy: FailurePolicy;
  timeoutSeconds?: number;
  name?: string;
}

/** Every kind and served version the rules know; Equivalent also routes other versions here. */
export const webhookRules = [
  {
    apiGroups: ['app.redislabs.com'],
    apiVersions: ['v1', 'v1alpha1'],
    operations: ['CREATE', 'UPDATE'],
    resources: ['redisenterpriseclusters'],
    scope: 'Namespaced',
  },
  {
    apiGroups: ['networking.istio.io'],
    apiVersions: ['v1', 'v1beta1', 'v1alpha3'],
    operations: ['CREATE', 'UPDATE'],
    resources: ['gateways', 'virtualservices'],
    scope: 'Namespaced',
  },
];

function webhook(name: string, path: string, target: WebhookTarget) {
  const base = target.url.replace(/\/+$/, '');
  if (!/^https:\/\/127\.0\.0\.1:\d+$/.test(base)) throw new Error(`webhook URL must be https on 127.0.0.1, not ${target.url}`);
  return {
    name,
    clientConfig: { url: `${base}${path}`, caBundle: Buffer.from(target.caPem).toString('base64') },
    rules: webhookRules,
    matchPolicy: 'Equivalent',
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    timeoutSeconds: target.timeoutSeconds ?? 5,
    failurePolicy: target.failurePolicy,
  };
}

export function validatingWebhookConfiguration(target: WebhookTarget) {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: target.name ?? CONFIGURATION_NAME },
    webhooks: [webhook(VALIDATING_WEBHOOK, '/validate', target)],
  };
}

export function mutatingWebhookConfiguration(target: WebhookTarget) {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: target.name ?? CONFIGURATION_NAME },
    webhooks: [{ ...webhook(MUTATING_WEBHOOK, '/mutate', target), reinvocationPolicy: 'Never' }],
  };
}
