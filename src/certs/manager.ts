/**
 * The selfSigned certificate mode: the webhook keeps its own CA and serving certificate in a
 * Secret, publishes the CA bundle into its own webhook configurations, and renews both well
 * before they expire, without a restart and without a moment where the API server distrusts it.
 *
 * Secret layout (type kubernetes.io/tls; the Helm chart writes the same keys at install):
 *   tls.crt, tls.key        the serving certificate and key
 *   ca.crt                  the trusted CA bundle: what goes into caBundle (one CA, two in a rotation)
 *   signer.crt, signer.key  the CA that signs serving certificates
 *   next.crt, next.key      during a CA rotation: the new CA, already in ca.crt, not yet signing
 *   annotation redis-istio-guard.io/next-ca-since: when next.crt was added
 *
 * Every replica runs reconcile() at start and then periodically. All writes are optimistic: a
 * create that meets AlreadyExists, or a replace that meets a resourceVersion conflict, re-reads
 * the Secret and plans again from what the winner wrote, so replicas starting together agree on
 * one CA. A CA rotation has two steps, at least propagationSeconds apart:
 *   1. the new CA is added to ca.crt and patched into every caBundle (old + new are trusted);
 *   2. once every caBundle holds it, the new CA signs a new serving certificate; the old CA stays
 *      in the bundle until it expires, so a replica still serving its old certificate stays trusted.
 */
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Secret,
} from '@kubernetes/client-node';
import { checkKey, due, info, issueServing, joinPem, newCa, servingOk, splitPem, type Pem } from './pki.ts';

export const NEXT_SINCE_ANNOTATION = 'redis-istio-guard.io/next-ca-since';

export interface CertManagerOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  secretName: string;
  /** DNS names and IP addresses of the serving certificate, e.g. svc, svc.ns, svc.ns.svc. */
  names: string[];
  validatingWebhookConfigurations?: string[];
  mutatingWebhookConfigurations?: string[];
  /** Default 1825 (5 years). */
  caValidityDays?: number;
  /** Default 365. */
  servingValidityDays?: number;
  /** Renew a certificate when less than this fraction of its lifetime is left. Default 1/3. */
  renewFraction?: number;
  /** Time a new CA must be in the published bundle before it signs. Default 300 s. */
  propagationSeconds?: number;
  /** Between reconciles. Default 3600 s; a pending rotation step is checked sooner. */
  checkIntervalSeconds?: number;
  /** Called with each new serving pair (and the first one), to swap it into the server. */
  onServingPair?: (pair: Pem) => void;
  /** Called when a periodic reconcile fails; the next one is tried later. */
  onError?: (err: unknown) => void;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  now?: () => Date;
}

export interface CertState {
  serving: Pem;
  signer: Pem;
  next?: Pem;
  nextSince?: Date;
  /** PEM bundle of the trusted CAs (the caBundle, before base64). */
  bundle: string;
  resourceVersion: string;
}

const DAY = 86_400_000;

function statusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown; body?: unknown };
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => (s === undefined ? undefined : Buffer.from(s, 'base64').toString('utf8'));

export class CertManager {
  readonly opts: Required<Omit<CertManagerOptions, 'onServingPair' | 'onError' | 'log' | 'now'>> &
    Pick<CertManagerOptions, 'onServingPair' | 'onError' | 'log'> & { now: () => Date };
  private readonly core: CoreV1Api;
  private readonly admission: AdmissionregistrationV1Api;
  private delivered: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(options: CertManagerOptions) {
    this.opts = {
      validatingWebhookConfigurations: [],
      mutatingWebhookConfigurations: [],
      caValidityDays: 1825,
      servingValidityDays: 365,
      renewFraction: 1 / 3,
      propagationSeconds: 300,
      checkIntervalSeconds: 3600,
      now: () => new Date(),
      ...options,
    };
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.admission = options.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  }

  private log(msg: string, fields?: Record<string, unknown>) {
    this.opts.log?.(msg, fields);
  }

  /** Reads the Secret (null when absent). */
  async read(): Promise<V1Secret | null> {
    try {
      return await this.core.readNamespacedSecret({ name: this.opts.secretName, namespace: this.opts.namespace });
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  /**
   * One pass: make sure the Secret holds a usable CA and serving certificate (creating or renewing
   * them), publish the bundle, and hand a new serving pair to onServingPair. Returns the state.
   */
  async reconcile(): Promise<CertState> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.reconcileOnce();
      } catch (err) {
        if (!(err instanceof Conflict) || attempt >= 8) throw err instanceof Conflict ? new Error(err.message) : err;
        this.log('lost a write race; re-reading the certificate Secret', { attempt });
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100 * attempt));
      }
    }
  }

  private async reconcileOnce(): Promise<CertState> {
    const now = this.opts.now();
    let secret = await this.read();
    if (!secret) {
      const data = await this.fresh(now);
      try {
        secret = await this.core.createNamespacedSecret({
          namespace: this.opts.namespace,
          body: this.secretBody(data, undefined),
        });
        this.log('created the certificate Secret', { secret: this.opts.secretName });
      } catch (err) {
        if (statusOf(err) === 409) throw new Conflict('certificate Secret created by another replica');
        throw err;
      }
    }

    let state = decode(secret);
    const planned = await this.plan(state, now);
    if (planned) {
      try {
        secret = await this.core.replaceNamespacedSecret({
          name: this.opts.secretName,
          namespace: this.opts.namespace,
          body: this.secretBody(planned.data, secret, planned.nextSince),
        });
        this.log(planned.reason, { secret: this.opts.secretName });
      } catch (err) {
        if (statusOf(err) === 409) throw new Conflict('certificate Secret changed by another replica');
        throw err;
      }
      state = decode(secret);
    }
    if (!state) throw new Error('certificate Secret unusable after writing it');

    await this.publish(state.bundle);
    const fp = info(state.serving.cert).fingerprint;
    if (fp !== this.delivered) {
      this.delivered = fp;
      this.opts.onServingPair?.(state.serving);
    }
    return state;
  }

  private names(): string[] {
    return this.opts.names;
  }

  /** A new CA and serving certificate. */
  private async fresh(now: Date): Promise<Record<string, string>> {
    const signer = await newCa(`${this.opts.secretName}-ca`, now, new Date(now.getTime() + this.opts.caValidityDays * DAY));
    const serving = await this.issue(signer, now);
    return { 'tls.crt': serving.cert, 'tls.key': serving.key, 'ca.crt': signer.cert, 'signer.crt': signer.cert, 'signer.key': signer.key };
  }

  private async issue(signer: Pem, now: Date): Promise<Pem> {
    const wanted = now.getTime() + this.opts.servingValidityDays * DAY;
    const notAfter = new Date(Math.min(wanted, info(signer.cert).notAfter.getTime()));
    return issueServing(signer, this.names(), now, notAfter);
  }

  /** The data to write, or null when the Secret is fine as it is. */
  private async plan(
    state: CertState | null,
    now: Date,
  ): Promise<{ data: Record<string, string>; reason: string; nextSince?: Date } | null> {
    if (!state) return { data: await this.fresh(now), reason: 'replaced an unusable certificate Secret' };
    const fraction = this.opts.renewFraction;
    let { signer, next, nextSince } = state;
    let serving: Pem | undefined = state.serving;
    const reasons: string[] = [];

    if (next && nextSince && now.getTime() - nextSince.getTime() >= this.opts.propagationSeconds * 1000 && (await this.published(next))) {
      signer = next;
      next = undefined;
      nextSince = undefined;
      serving = undefined;
      reasons.push('the new CA now signs the serving certificate');
    } else if (!next && due(signer.cert, now, fraction)) {
      next = await newCa(`${this.opts.secretName}-ca`, now, new Date(now.getTime() + this.opts.caValidityDays * DAY));
      nextSince = now;
      reasons.push('added a new CA to the bundle (rotation step 1)');
    }
    if (!serving || !servingOk(serving, signer, this.names(), now, fraction)) {
      serving = await this.issue(signer, now);
      if (reasons.length === 0) reasons.push('renewed the serving certificate');
    }

    // Trust: the signer, the next CA, and older CAs until they expire.
    const keep = splitPem(state.bundle).filter((pem) => info(pem).notAfter.getTime() > now.getTime());
    const bundle = joinPem([...keep, signer.cert, ...(next ? [next.cert] : [])]);

    const data: Record<string, string> = {
      'tls.crt': serving.cert,
      'tls.key': serving.key,
      'ca.crt': bundle,
      'signer.crt': signer.cert,
      'signer.key': signer.key,
      ...(next ? { 'next.crt': next.cert, 'next.key': next.key } : {}),
    };
    const unchanged =
      data['tls.crt'] === state.serving.cert &&
      bundle === state.bundle &&
      signer.cert === state.signer.cert &&
      next?.cert === state.next?.cert;
    if (unchanged) return null;
    if (reasons.length === 0) reasons.push('updated the CA bundle');
    return { data, reason: reasons.join('; '), ...(nextSince ? { nextSince } : {}) };
  }

  private secretBody(data: Record<string, string>, previous: V1Secret | undefined | null, nextSince?: Date): V1Secret {
    const annotations = { ...(previous?.metadata?.annotations ?? {}) };
    delete annotations[NEXT_SINCE_ANNOTATION];
    if (nextSince && data['next.crt']) annotations[NEXT_SINCE_ANNOTATION] = nextSince.toISOString();
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      // The type is immutable: keep the one an existing Secret has.
      type: previous?.type ?? 'kubernetes.io/tls',
      metadata: {
        name: this.opts.secretName,
        namespace: this.opts.namespace,
        labels: previous?.metadata?.labels ?? { 'app.kubernetes.io/name': 'redis-istio-guard' },
        annotations,
        ...(previous?.metadata?.resourceVersion ? { resourceVersion: previous.metadata.resourceVersion } : {}),
      },
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
    };
  }

  private configs(): { kind: 'validating' | 'mutating'; name: string }[] {
    return [
      ...this.opts.validatingWebhookConfigurations.map((name) => ({ kind: 'validating' as const, name })),
      ...this.opts.mutatingWebhookConfigurations.map((name) => ({ kind: 'mutating' as const, name })),
    ];
  }

  private async readConfig(kind: 'validating' | 'mutating', name: string) {
    try {
      return kind === 'validating'
        ? await this.admission.readValidatingWebhookConfiguration({ name })
        : await this.admission.readMutatingWebhookConfiguration({ name });
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  /** True when every existing webhook configuration's caBundle trusts ca. */
  private async published(ca: Pem): Promise<boolean> {
    const fp = info(ca.cert).fingerprint;
    for (const { kind, name } of this.configs()) {
      const cfg = await this.readConfig(kind, name);
      for (const wh of cfg?.webhooks ?? []) {
        const bundle = unb64(wh.clientConfig.caBundle as unknown as string | undefined) ?? '';
        if (!splitPem(bundle).some((pem) => info(pem).fingerprint === fp)) return false;
      }
    }
    return true;
  }

  /** Patches caBundle of every webhook in the configured webhook configurations that differs. */
  async publish(bundle: string): Promise<void> {
    const want = b64(bundle);
    for (const { kind, name } of this.configs()) {
      const cfg = await this.readConfig(kind, name);
      if (!cfg) {
        this.log('webhook configuration not found; caBundle not published', { kind, name });
        continue;
      }
      const ops: unknown[] = [{ op: 'test', path: '/metadata/resourceVersion', value: cfg.metadata?.resourceVersion }];
      (cfg.webhooks ?? []).forEach((wh, i) => {
        const have = wh.clientConfig.caBundle as unknown as string | undefined;
        if (have !== want) ops.push({ op: have === undefined ? 'add' : 'replace', path: `/webhooks/${i}/clientConfig/caBundle`, value: want });
      });
      if (ops.length === 1) continue;
      const opts = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
      try {
        if (kind === 'validating') await this.admission.patchValidatingWebhookConfiguration({ name, body: ops }, opts);
        else await this.admission.patchMutatingWebhookConfiguration({ name, body: ops }, opts);
      } catch (err) {
        // A failed test op (422) or a conflict means someone wrote in between: plan again.
        if (statusOf(err) === 409 || statusOf(err) === 422) throw new Conflict(`${name} changed while patching its caBundle`);
        throw err;
      }
      this.log('published the CA bundle', { kind, name, webhooks: ops.length - 1 });
    }
  }

  /** Reconciles now, then keeps doing so; the first reconcile's error is thrown. */
  async start(): Promise<CertState> {
    this.stopped = false;
    const state = await this.reconcile();
    this.schedule(state);
    return state;
  }

  private schedule(state: CertState | undefined) {
    if (this.stopped) return;
    let ms = this.opts.checkIntervalSeconds * 1000;
    // A pending rotation step is taken as soon as it may be.
    if (state?.next && state.nextSince) {
      const at = state.nextSince.getTime() + this.opts.propagationSeconds * 1000 - this.opts.now().getTime();
      ms = Math.min(ms, Math.max(1000, at + 1000));
    }
    // Jitter, so replicas do not all write at the same moment.
    ms = Math.round(ms * (0.9 + Math.random() * 0.2));
    this.timer = setTimeout(() => {
      this.reconcile().then(
        (s) => this.schedule(s),
        (err) => {
          this.opts.onError?.(err);
          this.schedule(undefined);
        },
      );
    }, ms);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

class Conflict extends Error {}

/** The state in a Secret, or null when it is missing keys or holds unusable material. */
export function decode(secret: V1Secret | null): CertState | null {
  const d = secret?.data ?? {};
  const get = (k: string) => unb64(d[k]);
  const serving = { cert: get('tls.crt'), key: get('tls.key') };
  const signer = { cert: get('signer.crt'), key: get('signer.key') };
  const bundle = get('ca.crt');
  if (!serving.cert || !serving.key || !signer.cert || !signer.key || !bundle) return null;
  try {
    checkKey(serving as Pem);
    checkKey(signer as Pem);
    if (!info(signer.cert).x509.ca) return null;
    if (splitPem(bundle).length === 0) return null;
    const nextCert = get('next.crt');
    const nextKey = get('next.key');
    const sinceRaw = secret?.metadata?.annotations?.[NEXT_SINCE_ANNOTATION];
    let next: Pem | undefined;
    let nextSince: Date | undefined;
    if (nextCert && nextKey) {
      next = { cert: nextCert, key: nextKey };
      checkKey(next);
      nextSince = sinceRaw && !Number.isNaN(Date.parse(sinceRaw)) ? new Date(sinceRaw) : new Date(0);
    }
    return {
      serving: serving as Pem,
      signer: signer as Pem,
      ...(next ? { next } : {}),
      ...(nextSince ? { nextSince } : {}),
      bundle,
      resourceVersion: secret?.metadata?.resourceVersion ?? '',
    };
  } catch {
    return null;
  }
}
