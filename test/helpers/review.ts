/** AdmissionReviews shaped the way kube-apiserver sends them, and a real TLS client. */
import { randomUUID } from 'node:crypto';
import { request, Agent } from 'node:https';

const RESOURCES: Record<string, { group: string; resource: string }> = {
  RedisEnterpriseCluster: { group: 'app.redislabs.com', resource: 'redisenterpriseclusters' },
  Gateway: { group: 'networking.istio.io', resource: 'gateways' },
  VirtualService: { group: 'networking.istio.io', resource: 'virtualservices' },
};

export function admissionReview(
  object: { apiVersion: string; kind: string; metadata?: { name?: string; namespace?: string } } | null,
  opts: { operation?: string; oldObject?: object | null; dryRun?: boolean; kind?: { group: string; version: string; kind: string } } = {},
) {
  const operation = opts.operation ?? 'CREATE';
  const [group, version] = object && object.apiVersion.includes('/') ? object.apiVersion.split('/') : ['', object?.apiVersion ?? 'v1'];
  const kind = opts.kind ?? { group: group ?? '', version: version ?? 'v1', kind: object?.kind ?? 'Unknown' };
  const resource = { group: kind.group, version: kind.version, resource: RESOURCES[kind.kind]?.resource ?? `${kind.kind.toLowerCase()}s` };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: randomUUID(),
      kind,
      resource,
      requestKind: kind,
      requestResource: resource,
      name: object?.metadata?.name ?? '',
      namespace: object?.metadata?.namespace ?? 'default',
      operation,
      userInfo: { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] },
      object: operation === 'DELETE' ? null : object,
      oldObject: opts.oldObject ?? null,
      dryRun: opts.dryRun ?? false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: operation === 'UPDATE' ? 'UpdateOptions' : 'CreateOptions', fieldManager: 'kubectl-client-side-apply' },
    },
  };
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  text: string;
}

function call(
  url: string,
  ca: string,
  method: string,
  path: string,
  payload: string | Buffer | undefined,
  headers: Record<string, string | number>,
  agent?: Agent,
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, url), { method, ca, headers, ...(agent ? { agent } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

export function post(
  url: string,
  ca: string,
  path: string,
  body: unknown,
  opts: { contentType?: string; agent?: Agent; raw?: string | Buffer } = {},
): Promise<HttpResult> {
  const payload = opts.raw ?? JSON.stringify(body);
  const headers = { 'content-type': opts.contentType ?? 'application/json', 'content-length': Buffer.byteLength(payload) };
  return call(url, ca, 'POST', path, payload, headers, opts.agent);
}

export function get(url: string, ca: string, path: string): Promise<HttpResult> {
  return call(url, ca, 'GET', path, undefined, {});
}
