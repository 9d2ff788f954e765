/**
 * Differential tests against Istio's own validation code (test/harness/istio-oracle):
 * whatever Istio rejects, we reject; whatever it accepts, we accept, except the stricter cases
 * the README lists. Istio's error texts must reappear in our messages for the same field.
 */
import t from 'tap';
import fc from 'fast-check';
import { defaultContext } from '../../src/rules/context.ts';
import { decide, kindOfObject, type Decision } from '../../src/rules/engine.ts';
import type { KubeObject } from '../../src/rules/types.ts';
import { ISTIO_PIN, startOracle, type IstioVerdict } from '../harness/oracle.ts';
import { SEED, handGateways, handVirtualServices, objectArb } from './cases.ts';

t.setTimeout(30 * 60 * 1000);

const GENERATED = 20_000;

function ours(obj: KubeObject): Decision {
  const kind = kindOfObject(obj);
  if (!kind) throw new Error('not ours');
  return decide({ operation: 'CREATE', kind, object: obj }, defaultContext(String(obj.metadata?.namespace ?? '')));
}

/** Our documented stricter rules: partial wildcards in VirtualService hosts and sniHosts. */
const STRICTER = /partial wildcard ".*" not allowed: no Gateway host can match it/;
const isStricterOnly = (d: Decision) => d.errors.length > 0 && d.errors.every((f) => STRICTER.test(f.message));

/** Istio error classes whose words must reappear in our messages. */
const CLASSES: [string, RegExp][] = [
  ['partial wildcard', /^partial wildcard /],
  ['short name', /^short names \(non FQDN\)/],
  ['label invalid', /^domain name ".*" invalid \(label /],
  ['too long', /too long \(max 255\)$/],
  ['all-numeric', /cannot be all-numeric/],
  ['SNI not covered', /is not a compatible subset/],
];

type Verdict = 'agree' | 'stricter' | 'we-allow-istio-rejects' | 'we-reject-istio-allows' | 'words';

function compare(obj: KubeObject, istio: IstioVerdict): { verdict: Verdict; detail?: string } {
  const d = ours(obj);
  if (!istio.allowed && d.allowed) return { verdict: 'we-allow-istio-rejects' };
  if (istio.allowed && !d.allowed) return isStricterOnly(d) ? { verdict: 'stricter' } : { verdict: 'we-reject-istio-allows' };
  for (const err of istio.errors) {
    const cls = CLASSES.find(([, re]) => re.test(err));
    if (cls && !d.errors.some((f) => f.message.includes(err))) return { verdict: 'words', detail: `${cls[0]}: ${err}` };
  }
  return { verdict: 'agree' };
}

function explain(obj: KubeObject, istio: IstioVerdict | undefined): string {
  const d = ours(obj);
  return [
    `object: ${JSON.stringify({ kind: obj.kind, spec: obj.spec })}`,
    `istio: ${istio?.allowed ? 'allowed' : 'rejected'} ${JSON.stringify(istio?.errors ?? [])}`,
    `ours:  ${d.allowed ? 'allowed' : 'rejected'} ${JSON.stringify(d.errors.map((f) => f.message))}`,
  ].join('\n');
}

t.test(`differential against Istio ${ISTIO_PIN.version}`, async (t) => {
  const oracle = await startOracle();
  t.teardown(() => oracle.close());

  const hand = [...handGateways(), ...handVirtualServices()] as KubeObject[];
  const generated = fc.sample(objectArb, { numRuns: GENERATED, seed: SEED }) as KubeObject[];
  t.comment(`seed ${SEED}: ${hand.length} hand-picked and ${generated.length} generated objects`);
  const all = [...hand, ...generated];
  const verdicts = await oracle.judge(all);
  const counts: Record<Verdict, number> = { agree: 0, stricter: 0, 'we-allow-istio-rejects': 0, 'we-reject-istio-allows': 0, words: 0 };
  const failures: string[] = [];
  all.forEach((obj, i) => {
    const v = verdicts[i] as IstioVerdict;
    const { verdict, detail } = compare(obj, v);
    counts[verdict]++;
    if (verdict !== 'agree' && verdict !== 'stricter' && failures.length < 5) failures.push(`${verdict}${detail ? ` (${detail})` : ''}\n${explain(obj, v)}`);
  });
  const istioRejected = verdicts.filter((v) => !v.allowed).length;
  t.comment(
    `compared ${all.length}: Istio rejected ${istioRejected}; agree ${counts.agree}, stricter by design ${counts.stricter}, ` +
      `we allow what Istio rejects ${counts['we-allow-istio-rejects']}, we reject what Istio allows ${counts['we-reject-istio-allows']}, ` +
      `words differ ${counts.words}`,
  );
  t.ok(istioRejected > all.length / 10 && istioRejected < all.length * 0.9, 'the corpus has both verdicts in numbers');
  t.ok(counts.stricter > 0, 'the corpus exercises the documented stricter rules');
  t.equal(failures.length, 0, failures.join('\n\n'));

  // When the generated set disagrees, shrink to the smallest failing object and print it.
  if (counts['we-allow-istio-rejects'] + counts['we-reject-istio-allows'] + counts.words > 0) {
    const shrunk = await fc
      .check(
        fc.asyncProperty(objectArb, async (obj) => {
          const [v] = await oracle.judge([obj]);
          const { verdict } = compare(obj as KubeObject, v as IstioVerdict);
          return verdict === 'agree' || verdict === 'stricter';
        }),
        { seed: SEED, numRuns: GENERATED },
      )
      .catch((e: unknown) => ({ counterexample: undefined, error: e }));
    const example = (shrunk as { counterexample?: unknown[] }).counterexample?.[0] as KubeObject | undefined;
    if (example) t.fail(`smallest disagreement:\n${explain(example, (await oracle.judge([example]))[0])}`);
  }
});
