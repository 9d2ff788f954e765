/**
 * The Validating and Mutating webhook configurations a user registers for redis-istio-guard, rendered
 * from the Helm chart (charts/redis-istio-guard, `helm template` with the helm built from
 * test/harness/helm) so that the chart's rules, selectors and policies are the ones under test. Each
 * webhook's Service reference is swapped for a URL (the test webhook on 127.0.0.1) and its caBundle
 * (webhookConfigurationsForUrl). Nothing here repeats the chart's webhook definitions.
 *
 * The chart is rendered once, when this module loads (top-level await), with mutation.enabled=true
 * (which adds the MutatingWebhookConfiguration and leaves the Validating one as it is) and each
 * failurePolicy, so that the builders below stay synchronous.
 */
import { ensureHelm, helmTemplate, webhookConfigurationsForUrl, type Manifest, type Rendered } from './helm/helm.ts';

export type FailurePolicy = 'Fail' | 'Ignore';

export interface WebhookTarget {
  /** Base URL of the webhook server, e.g. https://127.0.0.1:40123 (no path). */
  url: string;
  /** PEM of the CA (or self-signed certificate) that verifies the server. */
  caPem: string;
  /** Rendered with the chart value webhook.failurePolicy. */
  failurePolicy: FailurePolicy;
}

const helm = await ensureHelm();
let renders: Record<FailurePolicy, Rendered>;
try {
  renders = {
    Fail: await helmTemplate(helm, { 'mutation.enabled': true, 'webhook.failurePolicy': 'Fail' }),
    Ignore: await helmTemplate(helm, { 'mutation.enabled': true, 'webhook.failurePolicy': 'Ignore' }),
  };
} finally {
  helm.cleanup();
}

function onlyWebhook(o: Manifest): { name: string; failurePolicy: string; namespaceSelector?: LabelSelector } {
  const webhooks = o.webhooks as { name: string; failurePolicy: string; namespaceSelector?: LabelSelector }[];
  if (webhooks.length !== 1) throw new Error(`${o.kind} ${o.metadata.name}: expected one webhook, the chart rendered ${webhooks.length}`);
  return webhooks[0]!;
}

const validatingTemplate = renders.Fail.one('ValidatingWebhookConfiguration');
const mutatingTemplate = renders.Fail.one('MutatingWebhookConfiguration');

/** The webhook names, as the API server prints them ("admission webhook "<name>" denied the request"). */
export const VALIDATING_WEBHOOK = onlyWebhook(validatingTemplate).name;
export const MUTATING_WEBHOOK = onlyWebhook(mutatingTemplate).name;
/** metadata.name of the configurations (the chart's full name for release "rig"). */
export const CONFIGURATION_NAME = validatingTemplate.metadata.name;
export const MUTATING_CONFIGURATION_NAME = mutatingTemplate.metadata.name;

function configuration(kind: 'ValidatingWebhookConfiguration' | 'MutatingWebhookConfiguration', target: WebhookTarget): Manifest {
  const base = target.url.replace(/\/+$/, '');
  if (!/^https:\/\/127\.0\.0\.1:\d+$/.test(base)) throw new Error(`webhook URL must be https on 127.0.0.1, not ${target.url}`);
  const found = webhookConfigurationsForUrl(renders[target.failurePolicy], base, target.caPem).filter((o) => o.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind} from the chart, got ${found.length}`);
  const obj = found[0]!;
  const policy = onlyWebhook(obj).failurePolicy;
  if (policy !== target.failurePolicy) throw new Error(`${kind}: rendered failurePolicy ${policy}, wanted ${target.failurePolicy}`);
  return obj;
}

export function validatingWebhookConfiguration(target: WebhookTarget): Manifest {
  return configuration('ValidatingWebhookConfiguration', target);
}

export function mutatingWebhookConfiguration(target: WebhookTarget): Manifest {
  return configuration('MutatingWebhookConfiguration', target);
}

// ---- which namespaces the chart's webhooks see ----

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

/** Kubernetes label-selector semantics (an absent selector selects everything). */
function selects(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const inValues = has && (e.values ?? []).includes(labels[e.key]!);
    const ok =
      e.operator === 'In' ? inValues : e.operator === 'NotIn' ? !inValues : e.operator === 'Exists' ? has : !has;
    if (!ok) return false;
  }
  return true;
}

/**
 * Throws unless both of the chart's webhooks are sent objects from this namespace (the chart leaves
 * out kube-system, the release namespace and namespaces with the opt-out label). The API server
 * labels every namespace with kubernetes.io/metadata.name.
 */
export function assertNamespaceSelected(namespace: string, labels: Record<string, string> = {}): void {
  const all = { ...labels, 'kubernetes.io/metadata.name': namespace };
  for (const o of [validatingTemplate, mutatingTemplate]) {
    const wh = onlyWebhook(o);
    if (!selects(wh.namespaceSelector, all))
      throw new Error(`namespace ${namespace} is left out by the chart's namespaceSelector of ${wh.name}: ${JSON.stringify(wh.namespaceSelector)}`);
  }
}
