/**
 * A minimal read-only Kubernetes API over plain HTTP on 127.0.0.1 for `check --cluster`: the list
 * endpoints it calls, paged, with a kubeconfig pointing at it. Records every request.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FakeCluster {
  url: string;
  kubeconfig: string;
  requests: string[];
  close(): Promise<void>;
}

export interface FakeClusterOptions {
  /** Path (without query) → items. Paths not listed answer 404. */
  lists: Record<string, unknown[]>;
  /** Answer every request with this status (e.g. 403). */
  status?: number;
  /** Never answer. */
  hang?: boolean;
  pageSize?: number;
  /** File name of the kubeconfig in dir. */
  name?: string;
}

export function kubeconfigFor(dir: string, server: string, name = 'kubeconfig'): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: fake`,
      `  cluster: {server: "${server}", insecure-skip-tls-verify: true}`,
      'users:',
      '- name: reader',
      '  user: {token: not-a-secret}',
      'contexts:',
      '- name: fake',
      '  context: {cluster: fake, user: reader}',
      '- name: other',
      '  context: {cluster: fake, user: reader, namespace: x}',
      'current-context: fake',
      '',
    ].join('\n'),
  );
  return file;
}

export async function startFakeCluster(dir: string, opts: FakeClusterOptions): Promise<FakeCluster> {
  const requests: string[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(`${req.method} ${req.url}`);
    if (opts.hang) return;
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (opts.status) return send(opts.status, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: `forbidden: User "reader" cannot list ${url.pathname}`, code: opts.status });
    const items = opts.lists[url.pathname];
    if (!items) return send(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'the server could not find the requested resource', code: 404 });
    const size = opts.pageSize ?? 500;
    const from = Number(url.searchParams.get('continue') ?? '0');
    const page = items.slice(from, from + size);
    const next = from + size < items.length ? String(from + size) : undefined;
    return send(200, { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '7', ...(next ? { continue: next } : {}) }, items: page });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    kubeconfig: kubeconfigFor(dir, url, opts.name ?? `kubeconfig-${(server.address() as AddressInfo).port}`),
    requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
