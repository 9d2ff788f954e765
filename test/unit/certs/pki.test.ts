import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { decode } from '../../../src/certs/manager.ts';
import { checkKey, due, info, issueServing, joinPem, newCa, servingOk, splitPem } from '../../../src/certs/pki.ts';

const now = new Date('2026-01-01T00:00:00Z');
const days = (n: number) => new Date(now.getTime() + n * 86_400_000);

const ca = await newCa('test-ca', now, days(30));
const otherCa = await newCa('other-ca', now, days(30));
const names = ['svc', 'svc.ns.svc', '127.0.0.1'];
const serving = await issueServing(ca, names, now, days(10));

t.test('the CA is a CA, the serving certificate is signed by it for every name', async (t) => {
  t.ok(new X509Certificate(ca.cert).ca);
  const leaf = new X509Certificate(serving.cert);
  t.notOk(leaf.ca);
  t.ok(leaf.verify(new X509Certificate(ca.cert).publicKey));
  t.ok(leaf.checkHost('svc.ns.svc'));
  t.ok(leaf.checkIP('127.0.0.1'));
  t.doesNotThrow(() => checkKey(serving));
  t.throws(() => checkKey({ cert: serving.cert, key: ca.key }), /does not match/);
  t.ok(info(serving.cert).notBefore < now, 'backdated for clock skew');
  await t.rejects(issueServing(ca, [], now, days(1)), /at least one/);
});

t.test('due when less than the fraction of the lifetime is left', async (t) => {
  // Lifetime: 10 days + the 1 minute backdating.
  t.notOk(due(serving.cert, days(6), 1 / 3));
  t.ok(due(serving.cert, days(7), 1 / 3));
  t.ok(due(serving.cert, days(11), 1 / 3), 'expired');
});

t.test('servingOk refuses a certificate that must be replaced', async (t) => {
  t.ok(servingOk(serving, ca, names, now, 1 / 3));
  t.notOk(servingOk(serving, otherCa, names, now, 1 / 3), 'signed by another CA');
  t.notOk(servingOk(serving, ca, [...names, 'new-name'], now, 1 / 3), 'missing a name');
  t.notOk(servingOk(serving, ca, names, days(8), 1 / 3), 'due for renewal');
  t.notOk(servingOk({ cert: serving.cert, key: otherCa.key }, ca, names, now, 1 / 3), 'wrong key');
});

t.test('bundles: split, join without duplicates, order kept', async (t) => {
  const bundle = joinPem([ca.cert, otherCa.cert, ca.cert]);
  t.same(splitPem(bundle), [ca.cert, otherCa.cert]);
  t.same(splitPem(`junk\n${ca.cert.replace(/\n/g, '\r\n')}`), [ca.cert]);
  t.same(splitPem('no certificates'), []);
});

t.test('decode accepts the Secret layout and rejects anything unusable', async (t) => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const data = {
    'tls.crt': b64(serving.cert),
    'tls.key': b64(serving.key),
    'ca.crt': b64(ca.cert),
    'signer.crt': b64(ca.cert),
    'signer.key': b64(ca.key),
  };
  const state = decode({ metadata: { resourceVersion: '7' }, data });
  t.equal(state?.resourceVersion, '7');
  t.equal(state?.next, undefined);
  const rotating = decode({
    metadata: { annotations: { 'redis-istio-guard.io/next-ca-since': now.toISOString() } },
    data: { ...data, 'next.crt': b64(otherCa.cert), 'next.key': b64(otherCa.key) },
  });
  t.equal(rotating?.nextSince?.toISOString(), now.toISOString());
  t.equal(decode(null), null);
  t.equal(decode({ data: { ...data, 'signer.key': b64(otherCa.key) } }), null, 'signer key mismatch');
  t.equal(decode({ data: { ...data, 'signer.crt': b64(serving.cert), 'signer.key': b64(serving.key) } }), null, 'signer not a CA');
  const { ['ca.crt']: _, ...noBundle } = data;
  t.equal(decode({ data: noBundle }), null, 'no bundle');
  t.equal(decode({ data: { ...data, 'ca.crt': b64('nothing') } }), null, 'empty bundle');
});
