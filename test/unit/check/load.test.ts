import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { loadInputs, STDIN_NAME } from '../../../src/check/load.ts';

const svc = (name: string) => `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\n`;

const names = (r: Awaited<ReturnType<typeof loadInputs>>) =>
  r.objects.map((o) => `${o.file}:${o.line} ${String((o.object.metadata as { name?: string }).name)}`);
const problems = (r: Awaited<ReturnType<typeof loadInputs>>) => r.problems.map((p) => `${p.file}${p.line ? `:${p.line}` : ''}: ${p.message}`);

t.test('directories: recursive, sorted, manifest extensions only, no dot entries, no loops', async (t) => {
  const dir = t.testdir({
    'b.yaml': svc('b'),
    'a.yml': svc('a'),
    'c.json': JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'c' } }),
    'D.YAML': svc('d-upper'),
    'notes.txt': svc('txt'),
    'chart.tgz': 'binary',
    sub: { deeper: { 'z.yaml': svc('z') }, 'y.yaml': `${svc('y1')}---\n${svc('y2')}` },
    '.git': { 'x.yaml': svc('hidden') },
    '.hidden.yaml': svc('hidden-file'),
    node_modules: { 'm.yaml': svc('module') },
  });
  symlinkSync(dir, join(dir, 'sub', 'loop'));
  symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling.yaml'));
  const r = await loadInputs([dir]);
  const rel = (s: string) => s.slice(dir.length + 1);
  t.same(
    names(r).map(rel),
    ['D.YAML:1 d-upper', 'a.yml:1 a', 'b.yaml:1 b', 'c.json:1 c', 'sub/deeper/z.yaml:1 z', 'sub/y.yaml:1 y1', 'sub/y.yaml:6 y2'],
  );
  t.same(r.problems, []);
  t.equal(r.files, 6);
  t.equal(r.documents, 7);

});

t.test('a file or directory named twice, or reached twice, is read once', async (t) => {
  const dir = t.testdir({ 'a.yml': svc('a'), sub: { 'y.yaml': `${svc('y1')}---\n${svc('y2')}` } });
  symlinkSync(join(dir, 'a.yml'), join(dir, 'sub', 'link.yaml'));
  const twice = await loadInputs([join(dir, 'a.yml'), join(dir, 'a.yml'), join(dir, 'sub'), join(dir, 'sub'), dir]);
  t.same(names(twice).map((s) => s.slice(dir.length + 1)), ['a.yml:1 a', 'sub/y.yaml:1 y1', 'sub/y.yaml:6 y2']);
  t.same(twice.problems, []);
});

t.test('paths that cannot be read are problems of their own; the rest is read', async (t) => {
  const dir = t.testdir({ 'ok.yaml': svc('ok'), empty: {}, 'only.txt': 'x' });
  execFileSync('mkfifo', [join(dir, 'pipe.yaml')]);
  mkdirSync(join(dir, 'withfifo'));
  execFileSync('mkfifo', [join(dir, 'withfifo', 'p.yaml')]);
  const started = Date.now();
  const r = await loadInputs([
    join(dir, 'missing.yaml'),
    join(dir, 'ok.yaml', 'below'),
    join(dir, 'pipe.yaml'),
    join(dir, 'withfifo'),
    join(dir, 'empty'),
    join(dir, 'ok.yaml'),
  ]);
  t.ok(Date.now() - started < 5000, 'a FIFO without a writer does not block');
  const rel = (s: string) => s.split(`${dir}/`).join('');
  t.same(problems(r).map(rel), [
    'missing.yaml: no such file or directory',
    'ok.yaml/below: not a directory: a part of the path is a file',
    'pipe.yaml: not a regular file (a FIFO, socket or device?); pipe it to stdin and pass "-" instead',
    'withfifo: no .yaml, .yml, .json files in this directory',
    'empty: no .yaml, .yml, .json files in this directory',
  ]);
  t.same(names(r).map(rel), ['ok.yaml:1 ok']);
});

t.test('binary and non-UTF-8 files', async (t) => {
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]);
  const latin1 = Buffer.concat([Buffer.from('apiVersion: v1\nkind: Service\nmetadata:\n  name: caf'), Buffer.from([0xe9]), Buffer.from('\n')]);
  const replacement = Buffer.from('# \uFFFD is fine when encoded\nkind: x\nname: \xff'.replace('\xff', ''), 'utf8');
  const dir = t.testdir({ 'image.yaml': png, 'latin1.yaml': latin1, 'utf16.yaml': Buffer.from('\uFEFFkind: x\n', 'utf16le'), 'ok.yaml': replacement });
  const r = await loadInputs([join(dir, 'image.yaml'), join(dir, 'latin1.yaml'), join(dir, 'utf16.yaml'), join(dir, 'ok.yaml')]);
  const rel = (s: string) => s.split(`${dir}/`).join('');
  t.same(problems(r).map(rel), [
    'image.yaml:3: binary data (a NUL byte): not YAML or JSON text (UTF-16 text is not accepted either)',
    'latin1.yaml:4: not UTF-8 text: a binary file?',
    'utf16.yaml:1: binary data (a NUL byte): not YAML or JSON text (UTF-16 text is not accepted either)',
  ]);
  t.equal(r.files, 4);
});

t.test('size limit, and 10 MB inputs in bounded time', async (t) => {
  const dir = t.testdir({});
  const big = join(dir, 'big.yaml');
  writeFileSync(big, svc('x').repeat(100));
  const limited = await loadInputs([big], { maxBytes: 1000 });
  t.match(problems(limited)[0], /big\.yaml: 0\.0 MiB: larger than the 0\.0 MiB limit/);
  const stdinLimited = await loadInputs(['-'], { maxBytes: 1000, stdin: Readable.from([Buffer.alloc(600, 'a'), Buffer.alloc(600, 'a')]) });
  t.same(problems(stdinLimited), [`${STDIN_NAME}: more than 0.0 MiB; the limit is 0.0 MiB`]);

  // A 10 MB helm-style stream: many documents.
  let yaml = '';
  for (let i = 0; yaml.length < 10 * 1024 * 1024; i++)
    yaml += `---\n# Source: chart/templates/svc-${i}.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: s${i}\n  namespace: ns${i % 50}\n  labels: {app: a${i}, tier: backend}\nspec:\n  ports:\n  - {name: redis, port: ${(i % 60000) + 1}}\n`;
  writeFileSync(big, yaml);
  let started = Date.now();
  const y = await loadInputs([big]);
  const yamlMs = Date.now() - started;
  t.same(y.problems, []);
  t.ok(y.objects.length > 40_000, `${y.objects.length} objects`);
  t.ok(yamlMs < 120_000, `10 MB of YAML in ${yamlMs} ms`);

  // 10 MB of JSON: one List, parsed with JSON.parse.
  const items = [];
  for (let i = 0; i < 75_000; i++) items.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'x' }, spec: { ports: [{ port: 80 }] } });
  const json = JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
  t.ok(json.length > 7_000_000);
  writeFileSync(join(dir, 'big.json'), json);
  started = Date.now();
  const j = await loadInputs([join(dir, 'big.json')]);
  const jsonMs = Date.now() - started;
  t.equal(j.objects.length, 75_000);
  t.ok(jsonMs < 20_000, `${(json.length / 1e6).toFixed(1)} MB of JSON in ${jsonMs} ms`);
  const last = j.objects[74_999];
  t.equal(last?.locate('metadata.name'), 1, 'one-line JSON: every field is on line 1');

  // One 10 MB string.
  writeFileSync(big, `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n  blob: "${'x'.repeat(10 * 1024 * 1024)}"\n`);
  started = Date.now();
  const s = await loadInputs([big]);
  t.same(s.problems, []);
  t.ok(Date.now() - started < 30_000, `one 10 MB string in ${Date.now() - started} ms`);
});

t.test('stdin', async (t) => {
  const r = await loadInputs(['-', '-'], { stdin: Readable.from([svc('a'), '---\n', svc('b')]) });
  t.same(names(r), [`${STDIN_NAME}:1 a`, `${STDIN_NAME}:6 b`]);
  t.equal(r.files, 1, 'stdin is read once');
  const none = await loadInputs(['-']);
  t.same(problems(none), [`${STDIN_NAME}: stdin is not available`]);
  const empty = await loadInputs(['-'], { stdin: Readable.from([]) });
  t.same(empty.problems, []);
  t.equal(empty.documents, 0);
});
