/**
 * Golden outputs of `check` in every format, on examples/ (every rule fires once) and on
 * test/golden/inputs/ (helm template and kustomize build output, JSON List, a file without a
 * namespace, a file that does not parse).
 *
 * After an intended change of the rules' words or of the output, regenerate and review the diff:
 *
 *   UPDATE_GOLDEN=1 npx tap test/unit/check/golden.test.ts
 *   git diff test/golden/
 */
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCheck } from '../../../src/check/run.ts';
import type { OutputFormat } from '../../../src/check/report.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
// Paths in the output are as given on the command line: relative to the repository root.
process.chdir(root);

const update = process.env.UPDATE_GOLDEN === '1';

const sets: { name: string; paths: string[]; exitCode: number }[] = [
  { name: 'examples', paths: ['examples'], exitCode: 1 },
  { name: 'inputs', paths: ['test/golden/inputs'], exitCode: 2 },
];
const formats: { output: OutputFormat; ext: string }[] = [
  { output: 'text', ext: 'txt' },
  { output: 'json', ext: 'json' },
  { output: 'github', ext: 'github.txt' },
];

for (const set of sets)
  for (const { output, ext } of formats)
    t.test(`${set.name} as ${output}`, async (t) => {
      let out = '';
      const code = await runCheck(
        { paths: set.paths, output, warningsAsErrors: false, enforcement: {}, namespace: 'default', clusterDomain: 'cluster.local' },
        { stdout: (s) => void (out += s) },
      );
      t.equal(code, set.exitCode, 'exit code');
      const file = join(root, 'test/golden', `${set.name}.${ext}`);
      if (update) writeFileSync(file, out);
      t.equal(out, readFileSync(file, 'utf8'), `matches test/golden/${set.name}.${ext} (UPDATE_GOLDEN=1 to regenerate)`);
      if (output === 'json') t.equal(JSON.parse(out).summary.exitCode, set.exitCode);
    });
