/**
 * The test that keeps `check` and the webhook from drifting apart: the same objects, through
 * `check` and through POST /validate (as kube-apiserver sends them, over TLS), with the same
 * cluster view and the same enforcement, get the same verdict and the same words.
 *
 * What differs on purpose: where the input cannot tell whether a Service or Gateway exists, the
 * webhook allows with a warning that the check was skipped; `check` puts that in its summary
 * (notJudged) instead, so a partial manifest set does not fail CI for the wrong reason.
 */
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { formatWarnings } from '../../../src/admission/review.ts';
import { defaultServeSettings } from '../../../src/config.ts';
import { loadInputs } from '../../../src/check/load.ts';
import { indexInputs, judge } from '../../../src/check/run.ts';
import type { Enforcement } from '../../../src/rules/context.ts';
import { kindOfObject } from '../../../src/rules/engine.ts';
import { startServer } from '../../../src/server/serve.ts';
import { admissionReview, post } from '../../helpers/review.ts';

process.chdir(fileURLToPath(new URL('../../../', import.meta.url)));

const loaded = await loadInputs(['examples', 'test/golden/inputs']);
const ours = loaded.objects.filter((m) => kindOfObject(m.object));

const enforcements: { name: string; enforcement: Record<string, Enforcement> }[] = [
  { name: 'default enforcement', enforcement: {} },
  {
    name: 'rules switched to deny, warn and off',
    enforcement: { 'vs-gateway-exists': 'deny', 'rec-api-covered': 'deny', 'vs-host': 'warn', 'vs-destination-service': 'warn', 'gateway-host': 'off' },
  },
];

t.ok(ours.length >= 25, `${ours.length} objects of our kinds`);
const rulesSeen = new Set<string>();

for (const { name, enforcement } of enforcements)
  t.test(name, async (t) => {
    const report = judge(loaded, { warningsAsErrors: false, enforcement, namespace: 'default', clusterDomain: 'cluster.local' });
    const index = indexInputs(loaded.objects, 'default');
    const server = await startServer(
      { ...defaultServeSettings, port: 0, host: '127.0.0.1', selfSigned: true, shutdownDelaySeconds: 0, enforcement },
      { logger: pino({ level: 'silent' }), cluster: () => index },
    );
    t.teardown(() => server.shutdown('test end'));
    const notJudged = report.summary.notJudged.map((n) => n.reason);
    let skipNotices = 0;

    for (const m of ours) {
      const meta = m.object.metadata as { name: string; namespace?: string };
      const namespace = meta.namespace ?? 'default';
      const label = `${m.file}:${m.line} ${String(m.object.kind)} ${namespace}/${meta.name}`;
      const mine = report.findings.filter(
        (f) => f.file === m.file && f.kind === m.object.kind && f.namespace === namespace && f.name === meta.name,
      );
      for (const f of mine) rulesSeen.add(f.rule);
      const errors = mine.filter((f) => f.severity === 'error').map((f) => f.message);
      const warnings = mine.filter((f) => f.severity === 'warning').map((f) => f.message);

      const res = await post(server.url, server.certificate, '/validate?timeout=10s', admissionReview(m.object as never));
      t.equal(res.status, 200, label);
      const response = res.body.response;
      t.equal(response.allowed, errors.length === 0, `${label}: same verdict`);
      t.same(response.status?.message?.split('\n') ?? [], errors, `${label}: same errors, same words, same order`);
      const webhookWarnings: string[] = response.warnings ?? [];
      const skipped = webhookWarnings.filter((w) => notJudged.some((r) => w.includes(r)));
      skipNotices += skipped.length;
      t.same(
        webhookWarnings.filter((w) => !skipped.includes(w)),
        warnings.length > 0 ? formatWarnings(warnings) : [],
        `${label}: same warnings`,
      );
    }
    t.ok(skipNotices > 0, 'the webhook warns about the checks it skips where check reports them as not judged');
  });

t.test('the fixtures cover every rule', async (t) => {
  const { builtinRules } = await import('../../../src/rules/engine.ts');
  t.same(builtinRules.map((r) => r.id).filter((id) => !rulesSeen.has(id)), [], 'rules without a finding in the parity fixtures');
});
