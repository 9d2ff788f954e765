import t from 'tap';
import { MAX_DEPTH, parseManifests } from '../../../src/check/parse.ts';
import { pathSegments } from '../../../src/check/locate.ts';

const summary = (file: string, text: string) => {
  const p = parseManifests(file, text);
  return {
    documents: p.documents,
    objects: p.objects.map((o) => `${o.line} ${String(o.object.kind)}/${String((o.object.metadata as { name?: string } | undefined)?.name)}`),
    problems: p.problems.map((x) => `${x.line}: ${x.message}`),
  };
};

t.test('path segments', async (t) => {
  const cases: [string, (string | number)[]][] = [
    ['spec', ['spec']],
    ['spec.hosts[0]', ['spec', 'hosts', 0]],
    ['spec.tls[1].match[0].sniHosts[12]', ['spec', 'tls', 1, 'match', 0, 'sniHosts', 12]],
    ['metadata.annotations[redis-istio-guard.io/skip-rules]', ['metadata', 'annotations[redis-istio-guard', 'io/skip-rules]']],
    ['', []],
  ];
  for (const [path, want] of cases) t.same(pathSegments(path), want, path);
});

t.test('documents and their lines', async (t) => {
  const cases: { name: string; text: string; documents: number; objects: string[]; problems?: string[] }[] = [
    {
      name: 'helm template output: Source comments, empty documents',
      text: [
        '---',
        '# Source: chart/templates/gw.yaml',
        'apiVersion: networking.istio.io/v1',
        'kind: Gateway',
        'metadata:',
        '  name: gw',
        '---',
        '# Source: chart/templates/empty.yaml',
        '---',
        '# Source: chart/templates/vs.yaml',
        'apiVersion: networking.istio.io/v1',
        'kind: VirtualService',
        'metadata: {name: vs}',
        '',
      ].join('\n'),
      documents: 2,
      objects: ['3 Gateway/gw', '11 VirtualService/vs'],
    },
    {
      name: 'kustomize build output: no leading marker',
      text: 'apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: b\n',
      documents: 2,
      objects: ['1 Service/a', '6 Service/b'],
    },
    {
      name: 'kind: List, as kubectl get -o yaml prints',
      text: 'apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: b\n',
      documents: 1,
      objects: ['4 Service/a', '7 Service/b'],
    },
    {
      name: 'a typed list (ServiceList) also expands',
      text: 'apiVersion: v1\nkind: ServiceList\nitems: [{apiVersion: v1, kind: Service, metadata: {name: a}}]\n',
      documents: 1,
      objects: ['3 Service/a'],
    },
    {
      name: 'JSON object',
      text: '\n\n{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}}',
      documents: 1,
      objects: ['3 Service/a'],
    },
    {
      name: 'JSON List',
      text: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'a' } }, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'b' } }] }, null, 2),
      documents: 1,
      objects: ['5 Service/a', '12 Service/b'],
    },
    {
      name: 'YAML flow style that is not JSON',
      text: '{apiVersion: v1, kind: Service, metadata: {name: a}}\n',
      documents: 1,
      objects: ['1 Service/a'],
    },
    {
      name: 'merge keys, as some hand-written manifests use',
      text: 'base: &b\n  apiVersion: v1\n  kind: Service\n---\n<<: {apiVersion: v1, kind: Service}\nmetadata: {name: merged}\n',
      documents: 2,
      objects: ['1 undefined/undefined', '5 Service/merged'],
    },
    {
      name: 'CRLF line ends and a byte order mark are fine',
      text: 'apiVersion: v1\r\nkind: Service\r\nmetadata:\r\n  name: a\r\n---\r\napiVersion: v1\r\nkind: Service\r\nmetadata:\r\n  name: b\r\n',
      documents: 2,
      objects: ['1 Service/a', '6 Service/b'],
    },
    {
      name: 'a scalar document is not an object',
      text: 'just text\n---\n[1, 2]\n',
      documents: 2,
      objects: [],
    },
    {
      name: 'a broken document is reported with its line; the others are still read',
      text: 'apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: b\n   bad: indent\n---\napiVersion: v1\nkind: Service\nmetadata: {name: c}\n',
      documents: 3,
      objects: ['1 Service/a', '11 Service/c'],
      problems: ['8: YAML: Nested mappings are not allowed in compact mappings'],
    },
    {
      name: 'duplicate keys are an error, as for kubectl',
      text: 'apiVersion: v1\nkind: Service\nkind: Gateway\n',
      documents: 1,
      objects: [],
      problems: ['3: YAML: Map keys must be unique'],
    },
    {
      name: 'an unterminated JSON object falls back to YAML, which says where',
      text: '{"apiVersion": "v1",\n "kind": "Service"\n',
      documents: 1,
      objects: [],
      problems: ['3: YAML: Flow map must end with a }'],
    },
  ];
  for (const c of cases) {
    const got = summary('f.yaml', c.text);
    t.same(got, { documents: c.documents, objects: c.objects, problems: c.problems ?? [] }, c.name);
  }
});

t.test('field lines, YAML and JSON alike', async (t) => {
  const obj = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'vs', namespace: 'redis' },
    spec: {
      hosts: ['a.example.com', 'b.example.com'],
      tls: [{ match: [{ port: 443, sniHosts: ['x.example.com'] }], route: [{ destination: { host: 'rec', port: { number: 9443 } } }] }],
    },
  };
  const yaml = [
    'apiVersion: networking.istio.io/v1', // 1
    'kind: VirtualService', // 2
    'metadata:', // 3
    '  name: vs', // 4
    '  namespace: redis', // 5
    'spec:', // 6
    '  hosts:', // 7
    '  - a.example.com', // 8
    '  - b.example.com', // 9
    '  tls:', // 10
    '  - match:', // 11
    '    - port: 443', // 12
    '      sniHosts: [x.example.com]', // 13
    '    route:', // 14
    '    - destination:', // 15
    '        host: rec', // 16
    '        port:', // 17
    '          number: 9443', // 18
  ].join('\n');
  const json = JSON.stringify(obj, null, 2);
  const jsonLine = (needle: string) => json.split('\n').findIndex((l) => l.includes(needle)) + 1;
  const cases: { path: string; yaml: number; json: number }[] = [
    { path: 'spec.hosts[1]', yaml: 9, json: jsonLine('"b.example.com"') },
    { path: 'spec.hosts', yaml: 7, json: jsonLine('"hosts"') },
    { path: 'spec.tls[0].match[0].sniHosts[0]', yaml: 13, json: jsonLine('"x.example.com"') },
    { path: 'spec.tls[0].match[0].port', yaml: 12, json: jsonLine('"port": 443') },
    { path: 'spec.tls[0].route[0].destination.host', yaml: 16, json: jsonLine('"host"') },
    { path: 'spec.tls[0].route[0].destination.port.number', yaml: 18, json: jsonLine('"number"') },
    // Missing fields: the deepest part that exists.
    { path: 'spec.tls[0].match[0].sniHosts[5]', yaml: 13, json: jsonLine('"sniHosts"') },
    { path: 'spec.gateways', yaml: 6, json: jsonLine('"spec"') },
    { path: 'spec.tls[3].route', yaml: 10, json: jsonLine('"tls"') },
    { path: 'metadata.annotations[redis-istio-guard.io/skip-rules]', yaml: 3, json: jsonLine('"metadata"') },
    { path: '', yaml: 1, json: 1 },
  ];
  const [y] = parseManifests('f.yaml', yaml).objects;
  const [j] = parseManifests('f.json', json).objects;
  t.ok(y && j);
  for (const c of cases) {
    t.equal(y?.locate(c.path), c.yaml, `yaml ${c.path}`);
    t.equal(j?.locate(c.path), c.json, `json ${c.path}`);
  }
  t.same(y?.object, obj);
  t.same(j?.object, obj);

  // List items: each item's own fields, in both forms.
  const list = { apiVersion: 'v1', kind: 'List', items: [obj, { ...obj, metadata: { name: 'second' } }] };
  const jl = parseManifests('l.json', JSON.stringify(list, null, 1)).objects;
  const lines = JSON.stringify(list, null, 1).split('\n');
  const second = jl[1];
  t.equal(lines[(second?.locate('metadata.name') ?? 0) - 1]?.trim(), '"name": "second"');
  t.equal(lines[(second?.locate('spec.hosts[1]') ?? 0) - 1]?.trim(), '"b.example.com"', 'the second item, not the first');
  t.equal(lines[(second?.line ?? 0) - 1]?.trim(), '{');
  const yl = parseManifests(
    'l.yaml',
    'apiVersion: v1\nkind: List\nitems:\n- kind: Gateway\n  apiVersion: networking.istio.io/v1\n  spec: {x: 1}\n- kind: Gateway\n  apiVersion: networking.istio.io/v1\n  spec:\n    x: 2\n- kind: Service\n  apiVersion: v1\n  spec:\n    x: 3\n',
  ).objects;
  t.same(yl.map((o) => [o.line, o.locate('spec.x')]), [[4, 6], [7, 10], [11, 11]], 'objects of other kinds keep no syntax tree: their own line');

  // JSON strings with escapes, brackets and quotes do not confuse the scanner.
  const tricky = { a: 'x"],{}[\\', b: ['{', '}', { c: 'd' }], spec: { hosts: ['h'] } };
  const tj = JSON.stringify(tricky, null, 2);
  const [to] = parseManifests('t.json', tj).objects;
  t.equal(to?.locate('spec.hosts[0]'), tj.split('\n').findIndex((l) => l.includes('"h"')) + 1);
  t.equal(to?.locate('b[2].c'), tj.split('\n').findIndex((l) => l.includes('"c"')) + 1);
});

t.test('hostile input is reported, fast, without a crash', async (t) => {
  const bomb = [
    'apiVersion: v1',
    'kind: ConfigMap',
    'a: &a ["x","x","x","x","x","x","x","x","x"]',
    'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
    'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
    'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
    'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
    'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
    'g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]',
    'h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]',
    'i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]',
  ].join('\n');
  const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
  let block = 'apiVersion: v1\nkind: ConfigMap\ndata:\n';
  for (let i = 1; i <= MAX_DEPTH + 5; i++) block += `${'  '.repeat(i)}k:\n`;
  const cases: { name: string; text: string; problem: RegExp; ms: number }[] = [
    { name: 'billion laughs', text: bomb, problem: /^1: YAML: more than 100 alias expansions/, ms: 2000 },
    { name: 'deep JSON (JSON.parse is iterative)', text: deep(100_000), problem: new RegExp(`^1: nested deeper than ${MAX_DEPTH} levels`), ms: 3000 },
    { name: 'deep YAML flow', text: `a: ${deep(100_000).replace(/^\[/, '{x: [').replace(/\]$/, ']}')}`, problem: /^1: /, ms: 15000 },
    { name: 'deep YAML block', text: block, problem: /^1: nested deeper than/, ms: 5000 },
    { name: 'deep JSON object', text: `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`, problem: /^1: nested deeper than/, ms: 3000 },
  ];
  for (const c of cases) {
    const started = Date.now();
    const p = parseManifests('x.yaml', c.text);
    const ms = Date.now() - started;
    t.equal(p.problems.length, 1, c.name);
    t.match(`${p.problems[0]?.line}: ${p.problems[0]?.message}`, c.problem, c.name);
    t.ok(ms < c.ms, `${c.name}: ${ms} ms`);
  }
  // Aliases within the limit are fine.
  t.same(parseManifests('x.yaml', 'apiVersion: v1\nkind: Service\nmetadata: &m {name: a}\nspec: {selector: *m}\n').problems, []);
});
