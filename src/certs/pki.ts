/**
 * The small PKI of the selfSigned certificate mode: a CA that signs the webhook's serving
 * certificate, and the PEM bundle of trusted CAs that goes into the webhook configurations'
 * caBundle. Certificates are made with `selfsigned` and read with node:crypto.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { generate } from 'selfsigned';

export interface Pem {
  cert: string;
  key: string;
}

/** An EC P-256 CA, valid from a minute ago (clock skew) to notAfter. */
export async function newCa(commonName: string, now: Date, notAfter: Date): Promise<Pem> {
  const result = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: normalize(result.cert), key: normalize(result.private) };
}

/** A serving certificate for the given DNS names and IP addresses, signed by ca. */
export async function issueServing(ca: Pem, names: string[], now: Date, notAfter: Date): Promise<Pem> {
  if (names.length === 0) throw new Error('a serving certificate needs at least one DNS name or IP address');
  const result = await generate([{ name: 'commonName', value: names[0]! }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: notAfter,
    ca,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: names.map((n) => (isIP(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n })),
      },
    ],
  });
  return { cert: normalize(result.cert), key: normalize(result.private) };
}

function normalize(pem: string): string {
  const trimmed = pem.replace(/\r\n/g, '\n').trim();
  return `${trimmed}\n`;
}

/** The PEM certificates of a bundle, in order, each ending with a newline. */
export function splitPem(bundle: string): string[] {
  return (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(normalize);
}

/** Concatenates certificates, dropping duplicates (same fingerprint), keeping the first order. */
export function joinPem(certs: string[]): string {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const pem of certs) {
    const fp = new X509Certificate(pem).fingerprint256;
    if (seen.has(fp)) continue;
    seen.add(fp);
    out.push(normalize(pem));
  }
  return out.join('');
}

export interface CertInfo {
  x509: X509Certificate;
  notBefore: Date;
  notAfter: Date;
  fingerprint: string;
}

export function info(pem: string): CertInfo {
  const x509 = new X509Certificate(pem);
  return { x509, notBefore: new Date(x509.validFrom), notAfter: new Date(x509.validTo), fingerprint: x509.fingerprint256 };
}

/** True when less than `fraction` of the certificate's lifetime is left at `now` (or it expired). */
export function due(pem: string, now: Date, fraction: number): boolean {
  const { notBefore, notAfter } = info(pem);
  const lifetime = notAfter.getTime() - notBefore.getTime();
  return notAfter.getTime() - now.getTime() < lifetime * fraction;
}

/** Throws unless key is the private key of cert. */
export function checkKey(pair: Pem): void {
  if (!new X509Certificate(pair.cert).checkPrivateKey(createPrivateKey(pair.key))) {
    throw new Error('private key does not match the certificate');
  }
}

/**
 * True when the serving certificate is usable as is: signed by ca, valid at now, not yet due for
 * renewal, and valid for every name.
 */
export function servingOk(serving: Pem, ca: Pem, names: string[], now: Date, renewFraction: number): boolean {
  try {
    checkKey(serving);
    const leaf = new X509Certificate(serving.cert);
    if (!leaf.verify(new X509Certificate(ca.cert).publicKey)) return false;
    if (leaf.checkIssued(new X509Certificate(ca.cert)) === false) return false;
    if (due(serving.cert, now, renewFraction)) return false;
    if (new Date(leaf.validFrom).getTime() > now.getTime() + 5 * 60_000) return false;
    return names.every((n) => (isIP(n) ? leaf.checkIP(n) !== undefined : leaf.checkHost(n, { wildcards: false }) !== undefined));
  } catch {
    return false;
  }
}
