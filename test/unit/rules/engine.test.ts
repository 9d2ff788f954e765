import t from 'tap';
import { parseEnforcement } from '../../../src/config.ts';
import { defaultContext } from '../../../src/rules/context.ts';
import { builtinRules, decide, evaluate, kindOfObject, RATCHET_NOTE } from '../../../src/rules/engine.ts';
import { gateway, rec, virtualService } from '../../fixtures/objects.ts';

const ctx = defaultContext('redis');
const bad = () => rec({ method: 'istio', apiFqdnUrl: 'api.redis.example.com', dbFqdnSuffix: '-redis.example.com' });

t.test('classification by apiVersion and kind', async (t) => {
  const cases: [unknown, string | undefined][] = [
    [rec(), 'RedisEnterpriseCluster'],
    [rec(null, { apiVersion: 'app.redislabs.com/v1alpha1' }), 'RedisEnterpriseCluster'],
    [gateway(['*'], { apiVersion: 'networking.istio.io/v1alpha3' }), 'Gateway'],
    [virtualService(['a.b'], undefined, { apiVersion: 'networking.istio.io/v1beta1' }), 'VirtualService'],
    [gateway(['*'], { apiVersion: 'networking.istio.io/v2' }), undefined],
    [{ apiVersion: 'v1', kind: 'Service' }, undefined],
    [{ kind: 'Gateway' }, undefined],
    ['not an object', undefined],
  ];
  for (const [obj, want] of cases) t.equal(kindOfObject(obj), want, JSON.stringify(obj).slice(0, 60));
});

t.test('enforcement: deny, warn, off', async (t) => {
  const warnOnly = rec({ method: 'istio', apiFqdnUrl: 'api.other.com', dbFqdnSuffix: '.redis.example.com' });
  t.same(evaluate('RedisEnterpriseCluster', warnOnly, ctx).map((f) => f.severity), ['warning']);
  t.same(evaluate('RedisEnterpriseCluster', warnOnly, ctx, { enforcement: { 'rec-api-covered': 'deny' } }).map((f) => f.severity), ['error']);
  t.same(evaluate('RedisEnterpriseCluster', bad(), ctx, { enforcement: { 'rec-db-suffix': 'warn' } }).map((f) => f.severity), ['warning']);
  t.same(evaluate('RedisEnterpriseCluster', bad(), ctx, { enforcement: { 'rec-db-suffix': 'off' } }), []);
  t.equal(decide({ operation: 'CREATE', kind: 'RedisEnterpriseCluster', object: bad() }, ctx, { enforcement: { 'rec-db-suffix': 'warn' } }).allowed, true);
});

t.test('ratcheting compares rule and value with the stored object', async (t) => {
  const same = decide({ operation: 'UPDATE', kind: 'RedisEnterpriseCluster', object: bad(), oldObject: bad() }, ctx);
  t.equal(same.allowed, true);
  t.ok(same.warnings[0]?.message.endsWith(RATCHET_NOTE));
  const fromGood = decide({ operation: 'UPDATE', kind: 'RedisEnterpriseCluster', object: bad(), oldObject: rec() }, ctx);
  t.equal(fromGood.allowed, false, 'a value made bad in this update is denied');
  const create = decide({ operation: 'CREATE', kind: 'RedisEnterpriseCluster', object: bad(), oldObject: bad() }, ctx);
  t.equal(create.allowed, false, 'CREATE never ratchets');
  for (const operation of ['DELETE', 'CONNECT'] as const)
    t.same(decide({ operation, kind: 'RedisEnterpriseCluster', object: bad() }, ctx), { allowed: true, findings: [], errors: [], warnings: [] });
  // A Gateway whose bad host moved to another index is still the same bad value.
  const before = gateway(['*-redis.example.com']);
  const after = gateway(['api.redis.example.com', '*-redis.example.com']);
  t.equal(decide({ operation: 'UPDATE', kind: 'Gateway', object: after, oldObject: before }, ctx).allowed, true);
});

t.test('rule ids are unique and every rule has a summary', async (t) => {
  const ids = builtinRules.map((r) => r.id);
  t.equal(new Set(ids).size, ids.length);
  t.ok(builtinRules.every((r) => r.summary.length > 10));
});

t.test('--rule parsing', async (t) => {
  const known = builtinRules.map((r) => r.id);
  t.same(parseEnforcement(['rec-db-suffix=warn', 'gateway-host=off,vs-host=deny'], known), { 'rec-db-suffix': 'warn', 'gateway-host': 'off', 'vs-host': 'deny' });
  t.throws(() => parseEnforcement(['nope=deny'], known), /unknown rule "nope"/);
  t.throws(() => parseEnforcement(['vs-host=maybe'], known), /mode must be deny, warn or off/);
  t.throws(() => parseEnforcement(['vs-host'], known), /mode must be/);
});
