import t from 'tap';
import fc from 'fast-check';
import { HostIndex, hostMatches, hostSubsetOf } from '../../../src/rules/hostname.ts';

// Small alphabets make coincidences (shared suffixes, equal names) frequent.
const host = fc.oneof(
  fc.stringMatching(/^[ab.]{0,6}$/),
  fc.stringMatching(/^\*[ab.-]{0,5}$/),
  fc.constantFrom('*', '*.a', 'a.a', ''),
);

t.test('HostIndex answers exactly what pairwise comparison answers', async (t) => {
  fc.assert(
    fc.property(fc.array(host, { maxLength: 12 }), host, (hosts, sni) => {
      const index = new HostIndex(hosts);
      if (index.covers(sni) !== hosts.some((h) => hostSubsetOf(sni, h))) return false;
      const expected: [number, number][] = [];
      for (let i = 0; i < hosts.length; i++)
        for (let j = i + 1; j < hosts.length; j++) if (hostMatches(hosts[i] as string, hosts[j] as string)) expected.push([i, j]);
      return JSON.stringify(index.overlappingPairs(1000)) === JSON.stringify(expected);
    }),
    { numRuns: 3000, seed: 20261127 },
  );
  t.pass('3000 random host lists agree');
});

t.test('reported pairs are capped', async (t) => {
  t.equal(new HostIndex(Array.from({ length: 200 }, () => 'a.example.com')).overlappingPairs(100).length, 100);
});
