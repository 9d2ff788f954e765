/**
 * Serving certificates. A pair read from files is watched (fs.watch on the folder, plus a poll,
 * because Kubernetes swaps Secret volumes through a symlink and events can be missed) and swapped
 * into the running server with setSecureContext: new handshakes get the new pair, open
 * connections keep theirs. A pair that does not load is never served: the last good one stays.
 */
import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Server as TlsServer } from 'node:tls';
import { generate } from 'selfsigned';

export interface KeyPair {
  key: string;
  cert: string;
}

/** Throws when the pair is unusable: bad PEM, or a key that does not match the certificate. */
export function checkPair(pair: KeyPair): { notAfter: Date } {
  createSecureContext({ key: pair.key, cert: pair.cert });
  const x509 = new X509Certificate(pair.cert);
  return { notAfter: new Date(x509.validTo) };
}

export async function readPair(certFile: string, keyFile: string): Promise<KeyPair> {
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  return { cert, key };
}

/** An in-memory self-signed pair for local runs: valid for localhost and 127.0.0.1. */
export async function selfSignedPair(hosts: string[] = ['localhost'], ips: string[] = ['127.0.0.1', '::1'], days = 365): Promise<KeyPair> {
  const notAfterDate = new Date(Date.now() + days * 86_400_000);
  const result = await generate([{ name: 'commonName', value: hosts[0] ?? 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', digitalSignature: true, keyCertSign: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [...hosts.map((value) => ({ type: 2 as const, value })), ...ips.map((ip) => ({ type: 7 as const, ip }))],
      },
    ],
  });
  return { key: result.private, cert: result.cert };
}

export interface CertWatcherEvents {
  onReload(pair: KeyPair, notAfter: Date): void;
  onError(err: unknown): void;
}

/**
 * Watches a cert/key pair and calls onReload with each new, valid pair. Returns a stop function.
 */
export function watchPair(certFile: string, keyFile: string, current: KeyPair, events: CertWatcherEvents, pollMs = 10_000): () => void {
  let last = `${current.cert}\u0000${current.key}`;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  const check = async () => {
    if (running) return;
    running = true;
    try {
      const pair = await readPair(certFile, keyFile);
      const fingerprint = `${pair.cert}\u0000${pair.key}`;
      if (fingerprint === last) return;
      const { notAfter } = checkPair(pair);
      last = fingerprint;
      events.onReload(pair, notAfter);
    } catch (err) {
      // A half-written pair fails here and is retried on the next event or poll.
      events.onError(err);
    } finally {
      running = false;
    }
  };
  // Debounce: writers usually touch the cert and the key one after the other.
  const soon = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void check(), 100);
  };
  const watchers: FSWatcher[] = [];
  for (const dir of new Set([dirname(certFile), dirname(keyFile)])) {
    try {
      watchers.push(watch(dir, soon));
    } catch (err) {
      events.onError(err);
    }
  }
  const poll = setInterval(() => void check(), pollMs);
  poll.unref();
  return () => {
    clearInterval(poll);
    if (timer) clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}

/** Swaps the certificate of a running TLS server; existing connections are not interrupted. */
export function swapCertificate(server: TlsServer, pair: KeyPair): void {
  server.setSecureContext({ key: pair.key, cert: pair.cert, minVersion: 'TLSv1.2' });
}
