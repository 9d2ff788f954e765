import t from 'tap';
import { alwaysComplete, ClusterIndex, type Completeness } from '../../../src/cluster/index.ts';
import { closeNames, editDistance, resolveGatewayRef, resolveServiceHost, SKIP_RULES_ANNOTATION } from '../../../src/rules/cluster.ts';
import type { CacheMissPolicy, ClusterView, RuleContext } from '../../../src/rules/context.ts';
import { decide, evaluate } from '../../../src/rules/engine.ts';
import type { KubeObject } from '../../../src/rules/types.ts';
import { gateway, rec, redb, virtualService } from '../../fixtures/objects.ts';

const CLUSTER_RULES = [
  'vs-destination-service',
  'vs-destination-pending',
  'vs-destination-fqdn',
  'vs-destination-service-port',
  'vs-gateway-exists',
  'vs-gateway-host',
];

const svc = (name: string, ports: unknown, namespace = 'redis') => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace },
  spec: ports === undefined ? {} : { ports },
});

/** The cluster of the README example, plus a few odd objects. */
function world(opts: { completeness?: Completeness; onCacheMiss?: CacheMissPolicy } = {}) {
  const idx = new ClusterIndex({ completeness: opts.completeness ?? alwaysComplete, ...(opts.onCacheMiss ? { onCacheMiss: opts.onCacheMiss } : {}) });
  idx.upsert(rec());
  idx.upsert(redb('db1', { databasePort: 12000 }));
  idx.upsert(redb('db3'));
  idx.upsert(svc('db1', [{ name: 'redis', port: 12000 }]));
  idx.upsert(svc('db1-headless', [{ name: 'redis', port: 12000 }]));
  idx.upsert(svc('multi', [{ name: 'api', port: 9443 }, { name: 'cm', port: 8001 }]));
  idx.upsert(svc('noports', undefined));
  idx.upsert(svc('shared', [{ port: 80 }], 'apps'));
  idx.upsert(gateway(['*.redis.example.com', 'api.redis.example.com']));
  idx.upsert(gateway(['other.example.com'], { name: 'other-gateway' }));
  idx.upsert(gateway(['redis/*.scoped.example.com', './*.gwns.example.com'], { name: 'scoped' }));
  idx.upsert(gateway(undefined, { name: 'empty', servers: [] }));
  idx.upsert(gateway(['*.redis.example.com'], { name: 'local', namespace: 'redis' }));
  return idx;
}

const ctxOf = (cluster: ClusterView | undefined, namespace = 'redis'): RuleContext => ({
  namespace,
  clusterDomain: 'cluster.local',
  ...(cluster ? { cluster } : {}),
});

/** Only the cluster rules' findings, as "severity rule message". */
function brief(obj: KubeObject, cluster: ClusterView | null = world(), namespace = 'redis', enforcement?: Record<string, 'deny' | 'warn' | 'off'>) {
  return evaluate('VirtualService', obj, ctxOf(cluster ?? undefined, namespace), enforcement ? { enforcement } : {})
    .filter((f) => CLUSTER_RULES.includes(f.rule) || f.rule === 'skip-rules')
    .map((f) => `${f.severity} ${f.rule} ${f.message}`);
}

const D = 'spec.tls[0].route[0].destination';
const vs1 = (host: string, port?: number, opts: Parameters<typeof virtualService>[2] = {}) =>
  virtualService(['*.redis.example.com'], [{ sniHosts: ['db1.redis.example.com'], host, ...(port !== undefined ? { port } : {}) }], opts);

t.test('no cluster view: the cluster rules say nothing', async (t) => {
  t.same(brief(vs1('nope', 1), null), []);
});

t.test('destination Service and port', async (t) => {
  const cases: { name: string; host: string; port?: number; ns?: string; want: string[] }[] = [
    { name: 'real Service, right port', host: 'db1', port: 12000, want: [] },
    { name: 'real Service, no port, one port', host: 'db1', want: [] },
    { name: 'full name', host: 'db1.redis.svc.cluster.local', port: 12000, want: [] },
    { name: 'full name from another namespace', host: 'db1.redis.svc.cluster.local', port: 12000, ns: 'istio-system', want: [] },
    {
      name: 'missing, with a close name',
      host: 'db2',
      port: 12000,
      want: [
        `error vs-destination-service ${D}.host: Invalid value: "db2": Service "db2" not found in namespace "redis": traffic routed to it goes nowhere (istioctl analyze: IST0101); fix the host, or create the Service first (for a database, its RedisEnterpriseDatabase: the operator creates the Service); did you mean "db1" or "db3"?`,
      ],
    },
    {
      name: 'missing full name: suggestions keep the form',
      host: 'db2.redis.svc.cluster.local',
      want: [
        `error vs-destination-service ${D}.host: Invalid value: "db2.redis.svc.cluster.local": Service "db2" not found in namespace "redis": traffic routed to it goes nowhere (istioctl analyze: IST0101); fix the host, or create the Service first (for a database, its RedisEnterpriseDatabase: the operator creates the Service); did you mean "db1.redis.svc.cluster.local" or "db3.redis.svc.cluster.local"?`,
      ],
    },
    {
      name: 'missing, nothing close',
      host: 'zzzzzzzz',
      want: [
        `error vs-destination-service ${D}.host: Invalid value: "zzzzzzzz": Service "zzzzzzzz" not found in namespace "redis": traffic routed to it goes nowhere (istioctl analyze: IST0101); fix the host, or create the Service first (for a database, its RedisEnterpriseDatabase: the operator creates the Service)`,
      ],
    },
    {
      name: 'short name from the wrong namespace',
      host: 'db1',
      port: 12000,
      ns: 'istio-system',
      want: [
        `error vs-destination-service ${D}.host: Invalid value: "db1": Service "db1" not found in namespace "istio-system": traffic routed to it goes nowhere (istioctl analyze: IST0101); fix the host, or create the Service first (for a database, its RedisEnterpriseDatabase: the operator creates the Service); a Service "db1" exists in namespace "redis" (a short name means the VirtualService's namespace, "istio-system"): use "db1.redis.svc.cluster.local"`,
      ],
    },
    {
      name: 'wrong port on a real Service',
      host: 'db1',
      port: 12001,
      want: [
        `error vs-destination-service-port ${D}.port.number: Invalid value: 12001: Service "db1" in namespace "redis" has no port 12001, so traffic routed to it goes nowhere (istioctl analyze: IST0101 host:port); its ports: 12000 (redis); use 12000`,
      ],
    },
    {
      name: 'wrong port on a multi-port Service',
      host: 'multi',
      port: 443,
      want: [
        `error vs-destination-service-port ${D}.port.number: Invalid value: 443: Service "multi" in namespace "redis" has no port 443, so traffic routed to it goes nowhere (istioctl analyze: IST0101 host:port); its ports: 9443 (api), 8001 (cm)`,
      ],
    },
    {
      name: 'no port on a multi-port Service (IST0112)',
      host: 'multi',
      want: [
        `error vs-destination-service-port ${D}.port: Required value: Service "multi" in namespace "redis" exposes several ports, 9443 (api), 8001 (cm): name one in port.number (istioctl analyze: IST0112)`,
      ],
    },
    { name: 'multi-port, right port', host: 'multi', port: 8001, want: [] },
    {
      name: 'a Service without ports',
      host: 'noports',
      port: 80,
      want: [
        `error vs-destination-service-port ${D}.port.number: Invalid value: 80: Service "noports" in namespace "redis" has no port 80, so traffic routed to it goes nowhere (istioctl analyze: IST0101 host:port); it has no ports`,
      ],
    },
    { name: 'a Service without ports, no port given', host: 'noports', want: [] },
    {
      name: 'predicted REC Service',
      host: 'rec',
      port: 9443,
      want: [
        `warning vs-destination-pending ${D}.host: Invalid value: "rec": Service "rec" does not exist yet in namespace "redis"; the Redis Enterprise operator creates it for RedisEnterpriseCluster "rec", so it counts as existing`,
      ],
    },
    {
      name: 'predicted REC Service, another port: a warning only',
      host: 'rec',
      port: 8001,
      want: [
        `warning vs-destination-pending ${D}.host: Invalid value: "rec": Service "rec" does not exist yet in namespace "redis"; the Redis Enterprise operator creates it for RedisEnterpriseCluster "rec", so it counts as existing`,
        `warning vs-destination-service-port ${D}.port.number: Invalid value: 8001: Service "rec" in namespace "redis" does not exist yet; the operator creates it for RedisEnterpriseCluster "rec" with port 9443 (api); use "9443"`,
      ],
    },
    {
      name: 'predicted UI Service',
      host: 'rec-ui.redis.svc.cluster.local',
      port: 8443,
      ns: 'istio-system',
      want: [
        `warning vs-destination-pending ${D}.host: Invalid value: "rec-ui.redis.svc.cluster.local": Service "rec-ui" does not exist yet in namespace "redis"; the Redis Enterprise operator creates it for RedisEnterpriseCluster "rec", so it counts as existing`,
      ],
    },
    {
      name: 'predicted REDB Service without a known port: no port judgement',
      host: 'db3-headless',
      port: 5555,
      want: [
        `warning vs-destination-pending ${D}.host: Invalid value: "db3-headless": Service "db3-headless" does not exist yet in namespace "redis"; the Redis Enterprise operator creates it for RedisEnterpriseDatabase "db3", so it counts as existing`,
      ],
    },
    {
      name: 'name.ns names a Service that Istio will not find',
      host: 'db1.redis',
      port: 12000,
      want: [
        `warning vs-destination-fqdn ${D}.host: Invalid value: "db1.redis": Istio expands only a short name to a Service; "db1.redis" matches no host in Istio's registry unless a ServiceEntry declares it, so the route goes nowhere (istioctl analyze: IST0101); use "db1.redis.svc.cluster.local"`,
      ],
    },
    {
      name: 'name.ns.svc likewise',
      host: 'shared.apps.svc',
      port: 80,
      want: [
        `warning vs-destination-fqdn ${D}.host: Invalid value: "shared.apps.svc": Istio expands only a short name to a Service; "shared.apps.svc" matches no host in Istio's registry unless a ServiceEntry declares it, so the route goes nowhere (istioctl analyze: IST0101); use "shared.apps.svc.cluster.local"`,
      ],
    },
    {
      name: 'name.ns missing in a known namespace',
      host: 'db9.redis',
      want: [
        `error vs-destination-service ${D}.host: Invalid value: "db9.redis": Service "db9" not found in namespace "redis": traffic routed to it goes nowhere (istioctl analyze: IST0101); fix the host, or create the Service first (for a database, its RedisEnterpriseDatabase: the operator creates the Service); did you mean "db1.redis" or "db3.redis"?`,
      ],
    },
    { name: 'two labels, unknown namespace: an external name', host: 'example.com', port: 443, want: [] },
    { name: 'outside the cluster domain', host: 'db1.redis.example.com', port: 443, want: [] },
    { name: 'another cluster domain', host: 'db1.redis.svc.other.local', port: 443, want: [] },
    { name: 'a pod name under a headless Service', host: 'rec-0.rec.redis.svc.cluster.local', port: 443, want: [] },
    { name: 'an IP', host: '10.0.0.1', port: 443, want: [] },
    { name: 'a wildcard (the syntax rule says it)', host: '*.redis.svc.cluster.local', want: [] },
    { name: 'a trailing dot', host: 'db9.redis.svc.cluster.local.', want: [] },
    { name: 'an invalid label', host: 'db_1', want: [] },
    { name: 'a port out of range (the syntax rule says it)', host: 'db1', port: 70000, want: [] },
  ];
  for (const c of cases) t.same(brief(vs1(c.host, c.port, { namespace: c.ns ?? 'redis' }), world(), c.ns ?? 'redis'), c.want, c.name);
});

t.test('malformed destinations never crash', async (t) => {
  const bad = (spec: unknown) => ({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'x', namespace: 'redis' }, spec });
  const specs: unknown[] = [
    null,
    'x',
    { tls: 'x' },
    { tls: [null, { route: 'x' }, { route: [null, { destination: null }, { destination: { host: 7 } }, { destination: { host: 'db1', port: 'x' } }] }] },
    { tls: [{ route: [{ destination: { host: 'db1', port: { number: '12000' } } }] }] },
    { tls: [{ route: [{ destination: { host: 'multi', port: null } }] }] },
    { http: [{ mirror: 'x', mirrors: [null, { destination: 5 }] }] },
    { gateways: [null, 5, '', '/', 'a/', '/b', 'a/b/c', '.x'], hosts: [5] },
  ];
  for (const spec of specs) t.doesNotThrow(() => brief(bad(spec)), JSON.stringify(spec));
  t.same(
    brief(bad({ tls: [{ route: [{ destination: { host: 'multi', port: null } }] }] })),
    ['error vs-destination-service-port spec.tls[0].route[0].destination.port: Required value: Service "multi" in namespace "redis" exposes several ports, 9443 (api), 8001 (cm): name one in port.number (istioctl analyze: IST0112)'],
    'port: null is no port',
  );

  // A view that throws is treated as one that cannot judge.
  const throwing: ClusterView = {
    service: () => {
      throw new Error('boom');
    },
    serviceNames: () => {
      throw new Error('boom');
    },
    gateway: () => {
      throw new Error('boom');
    },
    complete: () => {
      throw new Error('boom');
    },
    namespace: () => {
      throw new Error('boom');
    },
  };
  const found = brief(vs1('db1', 12000), throwing);
  t.equal(found.length, 4, 'four skipped checks: Service, port, Gateway, Gateway hosts');
  t.ok(found.every((m) => m.startsWith('warning ') && m.includes('skipped')), found.join('\n'));
});

t.test('http, tcp and mirror destinations are checked', async (t) => {
  const vs = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'mesh-vs', namespace: 'redis' },
    spec: {
      hosts: ['db1'],
      http: [{ route: [{ destination: { host: 'nohttp' } }], mirror: { host: 'nomirror' }, mirrors: [{ destination: { host: 'nomirrors' } }] }],
      tcp: [{ route: [{ destination: { host: 'notcp', port: { number: 1 } } }] }],
    },
  };
  const paths = evaluate('VirtualService', vs, ctxOf(world()))
    .filter((f) => f.rule === 'vs-destination-service')
    .map((f) => `${f.path} ${String(f.value)}`);
  t.same(paths, [
    'spec.http[0].route[0].destination.host nohttp',
    'spec.tcp[0].route[0].destination.host notcp',
    'spec.http[0].mirror.host nomirror',
    'spec.http[0].mirrors[0].destination.host nomirrors',
  ]);
});

t.test('gateway references', async (t) => {
  const G = 'spec.gateways[0]';
  const cases: { name: string; gateways: unknown[]; hosts?: string[]; ns?: string; want: string[] }[] = [
    { name: 'exists and serves the host', gateways: ['istio-system/redis-gateway'], want: [] },
    { name: 'mesh is fine', gateways: ['mesh'], want: [] },
    { name: 'a short name means the VirtualService namespace', gateways: ['local'], want: [] },
    { name: './name', gateways: ['./local'], want: [] },
    { name: 'legacy name.namespace', gateways: ['redis-gateway.istio-system'], want: [] },
    {
      name: 'missing, with a close name',
      gateways: ['istio-system/redis-gatway'],
      want: [
        `warning vs-gateway-exists ${G}: Invalid value: "istio-system/redis-gatway": Gateway "redis-gatway" not found in namespace "istio-system" (istioctl analyze: IST0101); apply the Gateway, or correct the reference; did you mean "istio-system/redis-gateway"?`,
      ],
    },
    {
      name: 'missing short name',
      gateways: ['redis-gateway'],
      want: [
        `warning vs-gateway-exists ${G}: Invalid value: "redis-gateway": Gateway "redis-gateway" not found in namespace "redis" (istioctl analyze: IST0101); apply the Gateway, or correct the reference`,
      ],
    },
    {
      name: 'a match gateway is checked too',
      gateways: ['mesh'],
      want: [],
    },
    {
      name: 'IST0132: no host served',
      gateways: ['istio-system/other-gateway'],
      want: [
        `warning vs-gateway-host ${G}: Invalid value: "istio-system/other-gateway": none of the VirtualService hosts [*.redis.example.com] is served by Gateway istio-system/other-gateway, which serves [other.example.com] (istioctl analyze: IST0132): traffic through this Gateway never reaches these routes; add the host to the Gateway, or bind the VirtualService to the Gateway that serves it`,
      ],
    },
    {
      name: 'IST0132: a Gateway without servers',
      gateways: ['istio-system/empty'],
      want: [
        `warning vs-gateway-host ${G}: Invalid value: "istio-system/empty": none of the VirtualService hosts [*.redis.example.com] is served by Gateway istio-system/empty, which has no hosts (istioctl analyze: IST0132): traffic through this Gateway never reaches these routes; add the host to the Gateway, or bind the VirtualService to the Gateway that serves it`,
      ],
    },
    { name: 'a namespaced Gateway host visible from this namespace', gateways: ['istio-system/scoped'], hosts: ['db1.scoped.example.com'], want: [] },
    {
      name: 'a namespaced Gateway host not visible from another namespace',
      gateways: ['istio-system/scoped'],
      hosts: ['db1.scoped.example.com'],
      ns: 'apps',
      want: [
        `warning vs-gateway-host ${G}: Invalid value: "istio-system/scoped": none of the VirtualService hosts [db1.scoped.example.com] is served by Gateway istio-system/scoped, whose hosts [redis/*.scoped.example.com, ./*.gwns.example.com] are not visible from namespace "apps" (istioctl analyze: IST0132): traffic through this Gateway never reaches these routes; add the host to the Gateway, or bind the VirtualService to the Gateway that serves it`,
      ],
    },
    { name: 'a ./ host is visible in the Gateway namespace', gateways: ['istio-system/scoped'], hosts: ['a.gwns.example.com'], ns: 'istio-system', want: [] },
    { name: 'a wildcard VirtualService host matching a concrete Gateway host', gateways: ['istio-system/other-gateway'], hosts: ['*.example.com'], want: [] },
    {
      name: 'one finding per Gateway however often it is referenced',
      gateways: ['istio-system/other-gateway', 'other-gateway.istio-system'],
      want: [
        `warning vs-gateway-host ${G}: Invalid value: "istio-system/other-gateway": none of the VirtualService hosts [*.redis.example.com] is served by Gateway istio-system/other-gateway, which serves [other.example.com] (istioctl analyze: IST0132): traffic through this Gateway never reaches these routes; add the host to the Gateway, or bind the VirtualService to the Gateway that serves it`,
      ],
    },
    { name: 'invalid references are the syntax rule\'s', gateways: ['*/redis-gateway', 'istio-system/Bad_Name'], want: [] },
  ];
  for (const c of cases) {
    const ns = c.ns ?? 'redis';
    const vs = virtualService(c.hosts ?? ['*.redis.example.com'], [{ sniHosts: [(c.hosts ?? ['db1.redis.example.com'])[0]?.replace('*', 'db1') ?? ''], host: 'db1.redis.svc.cluster.local', port: 12000 }], {
      gateways: c.gateways,
      namespace: ns,
    });
    t.same(brief(vs, world(), ns), c.want, c.name);
  }

  // match[].gateways
  const vs = virtualService(['*.redis.example.com'], [{ sniHosts: ['db1.redis.example.com'], host: 'db1', port: 12000 }], { gateways: ['istio-system/redis-gateway'] });
  (vs.spec.tls[0]?.match[0] as Record<string, unknown>).gateways = ['istio-system/gone'];
  t.same(brief(vs), [
    'warning vs-gateway-exists spec.tls[0].match[0].gateways[0]: Invalid value: "istio-system/gone": Gateway "gone" not found in namespace "istio-system" (istioctl analyze: IST0101); apply the Gateway, or correct the reference',
  ]);
  // A delegate VirtualService (no hosts) is not judged for IST0132.
  const delegate = virtualService([], [{ sniHosts: ['db1.redis.example.com'], host: 'db1', port: 12000 }], { gateways: ['istio-system/other-gateway'] });
  t.same(brief(delegate), []);
});

t.test('cache misses: skipped with a warning, or denied, per the setting', async (t) => {
  const partial: Completeness = (kind, ns) => (ns === 'redis' && kind === 'Service') || `the ${kind} cache for namespace "${ns}" has not finished its first list`;
  const vs = vs1('nothere.istio-system.svc.cluster.local', 80, { gateways: ['istio-system/nogw'] });
  t.same(brief(vs, world({ completeness: partial })), [
    `warning vs-destination-service rule vs-destination-service skipped for "nothere.istio-system.svc.cluster.local" (${D}.host): the Service cache for namespace "istio-system" has not finished its first list; allowed without this check (on-cache-miss: allow)`,
    `warning vs-destination-service-port rule vs-destination-service-port skipped for "nothere.istio-system.svc.cluster.local" (${D}.port): the Service cache for namespace "istio-system" has not finished its first list; allowed without this check (on-cache-miss: allow)`,
    'warning vs-gateway-exists rule vs-gateway-exists skipped for "istio-system/nogw" (spec.gateways[0]): the Gateway cache for namespace "istio-system" has not finished its first list; allowed without this check (on-cache-miss: allow)',
    'warning vs-gateway-host rule vs-gateway-host skipped for "istio-system/nogw" (spec.gateways[0]): the Gateway cache for namespace "istio-system" has not finished its first list; allowed without this check (on-cache-miss: allow)',
  ]);
  const denying = world({ completeness: partial, onCacheMiss: 'deny' });
  t.same(brief(vs, denying), [
    `error vs-destination-service rule vs-destination-service could not check "nothere.istio-system.svc.cluster.local" (${D}.host): the Service cache for namespace "istio-system" has not finished its first list; denied because on-cache-miss is deny: retry once the webhook's cache has synced`,
    `error vs-destination-service-port rule vs-destination-service-port could not check "nothere.istio-system.svc.cluster.local" (${D}.port): the Service cache for namespace "istio-system" has not finished its first list; denied because on-cache-miss is deny: retry once the webhook's cache has synced`,
    'warning vs-gateway-exists rule vs-gateway-exists could not check "istio-system/nogw" (spec.gateways[0]): the Gateway cache for namespace "istio-system" has not finished its first list; warned because on-cache-miss is deny: retry once the webhook\'s cache has synced',
    'warning vs-gateway-host rule vs-gateway-host could not check "istio-system/nogw" (spec.gateways[0]): the Gateway cache for namespace "istio-system" has not finished its first list; warned because on-cache-miss is deny: retry once the webhook\'s cache has synced',
  ]);
  const decision = decide({ operation: 'CREATE', kind: 'VirtualService', object: vs }, ctxOf(denying));
  t.equal(decision.allowed, false, 'on-cache-miss deny denies');

  // Enforcement still rules: deny does not promote an allow-skip; warn demotes a deny-skip; off drops it.
  const allowing = world({ completeness: partial });
  const promoted = decide({ operation: 'CREATE', kind: 'VirtualService', object: vs }, ctxOf(allowing), {
    enforcement: { 'vs-destination-service': 'deny', 'vs-gateway-exists': 'deny' },
  });
  t.equal(promoted.allowed, true, 'a skipped check is not made an error by deny');
  t.same(
    brief(vs, denying, 'redis', { 'vs-destination-service': 'warn', 'vs-destination-service-port': 'off', 'vs-gateway-exists': 'deny', 'vs-gateway-host': 'off' }).map((m) =>
      m.split(' ').slice(0, 2).join(' '),
    ),
    ['warning vs-destination-service', 'error vs-gateway-exists'],
    'on-cache-miss deny: warn demotes, deny promotes, off drops',
  );

  // Several destinations with one reason make one warning.
  const two = virtualService(['*.redis.example.com'], [
    { sniHosts: ['a.redis.example.com'], host: 'a.x.svc.cluster.local' },
    { sniHosts: ['b.redis.example.com'], host: 'b.x.svc.cluster.local' },
  ]);
  t.same(brief(two, world({ completeness: (kind, ns) => ns !== 'x' || 'namespace "x" is not watched' })), [
    `warning vs-destination-service rule vs-destination-service skipped for "a.x.svc.cluster.local", "b.x.svc.cluster.local" (${D}.host and others): namespace "x" is not watched; allowed without this check (on-cache-miss: allow)`,
  ]);
  // A view without incompleteReason still says something.
  const bare: ClusterView = { service: () => undefined, serviceNames: () => [], gateway: () => undefined, complete: () => false };
  t.match(brief(vs1('x', 1), bare, 'redis'), [/skipped for "x" .*the Service cache cannot tell what exists in namespace "redis"/]);
});

t.test('defaults: missing Service and wrong port deny, the others warn', async (t) => {
  const judge = (obj: KubeObject) => decide({ operation: 'CREATE', kind: 'VirtualService', object: obj }, ctxOf(world()));
  t.equal(judge(vs1('db2', 12000)).allowed, false);
  t.equal(judge(vs1('db1', 1)).allowed, false);
  t.equal(judge(vs1('multi')).allowed, false);
  t.equal(judge(vs1('rec', 1)).allowed, true);
  t.equal(judge(vs1('db1.redis', 12000)).allowed, true);
  t.equal(judge(vs1('db1', 12000, { gateways: ['istio-system/gone'] })).allowed, true);
  t.equal(judge(vs1('db1', 12000, { gateways: ['istio-system/other-gateway'] })).allowed, true);

  // UPDATE ratchets: a destination that was already missing does not block a relabel.
  const old = vs1('db2', 12000);
  const relabelled = { ...old, metadata: { ...old.metadata, labels: { team: 'a' } } };
  const d = decide({ operation: 'UPDATE', kind: 'VirtualService', object: relabelled, oldObject: old }, ctxOf(world()));
  t.equal(d.allowed, true);
  t.match(d.warnings.map((f) => f.message), [/Service "db2" not found.*\(allowed: unchanged in this update\)/]);
});

t.test('the skip-rules annotation, on the object and on its namespace', async (t) => {
  const annotated = (value: unknown) => {
    const vs = vs1('db2', 1, { gateways: ['istio-system/gone'] });
    return { ...vs, metadata: { ...vs.metadata, annotations: { [SKIP_RULES_ANNOTATION]: value } } };
  };
  const obj = annotated('vs-destination-service, vs-destination-service-port vs-nope,gateway-host');
  const d = decide({ operation: 'CREATE', kind: 'VirtualService', object: obj }, ctxOf(world()));
  t.equal(d.allowed, true, 'switched off: allowed');
  t.same(
    d.warnings.map((f) => `${f.rule} ${f.message}`),
    [
      'vs-gateway-exists spec.gateways[0]: Invalid value: "istio-system/gone": Gateway "gone" not found in namespace "istio-system" (istioctl analyze: IST0101); apply the Gateway, or correct the reference',
      'vs-destination-service rule vs-destination-service not checked: switched off by the annotation redis-istio-guard.io/skip-rules on this VirtualService',
      'vs-destination-service-port rule vs-destination-service-port not checked: switched off by the annotation redis-istio-guard.io/skip-rules on this VirtualService',
      'skip-rules the annotation redis-istio-guard.io/skip-rules on this VirtualService names unknown rule "vs-nope": it switches nothing off',
    ],
    'a Gateway rule named on a VirtualService is not reported; an unknown id is',
  );
  t.ok(d.warnings.filter((f) => f.rule !== 'vs-gateway-exists').every((f) => f.notice === true));
  // Enforcement deny does not turn the notice into an error; off drops it.
  t.equal(decide({ operation: 'CREATE', kind: 'VirtualService', object: obj }, ctxOf(world()), { enforcement: { 'vs-destination-service': 'deny' } }).allowed, true);
  t.notOk(
    evaluate('VirtualService', obj, ctxOf(world()), { enforcement: { 'vs-destination-service': 'off' } }).some((f) => f.rule === 'vs-destination-service'),
  );
  // Malformed annotation values switch nothing off.
  for (const v of [5, null, '', ' , '])
    t.equal(decide({ operation: 'CREATE', kind: 'VirtualService', object: annotated(v) }, ctxOf(world())).allowed, false, JSON.stringify(v));

  // On the namespace (from the Namespace informer or a manifest).
  const idx = world();
  idx.upsert({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'redis', annotations: { [SKIP_RULES_ANNOTATION]: 'vs-destination-service-port,vs-destination-service' } } });
  const nsd = decide({ operation: 'CREATE', kind: 'VirtualService', object: vs1('db2', 1) }, ctxOf(idx));
  t.equal(nsd.allowed, true);
  t.same(nsd.warnings.map((f) => f.message), [
    'rule vs-destination-service-port not checked: switched off by the annotation redis-istio-guard.io/skip-rules on namespace "redis"',
    'rule vs-destination-service not checked: switched off by the annotation redis-istio-guard.io/skip-rules on namespace "redis"',
  ]);
  // Syntax rules can be switched off too, for any kind.
  const recObj = rec({ method: 'istio', apiFqdnUrl: 'api.redis.example.com', dbFqdnSuffix: '-redis.example.com' });
  const recOff = { ...recObj, metadata: { ...recObj.metadata, annotations: { [SKIP_RULES_ANNOTATION]: 'rec-db-suffix' } } };
  const rd = decide({ operation: 'CREATE', kind: 'RedisEnterpriseCluster', object: recOff }, ctxOf(undefined));
  t.equal(rd.allowed, true);
  t.match(rd.warnings.map((f) => f.message), ['rule rec-db-suffix not checked: switched off by the annotation redis-istio-guard.io/skip-rules on this RedisEnterpriseCluster']);
});

t.test('host and gateway resolution', async (t) => {
  const idx = world();
  const ctx = ctxOf(idx, 'redis');
  const cases: [string, unknown][] = [
    ['db1', { namespace: 'redis', name: 'db1', form: 'short' }],
    ['db1.redis', { namespace: 'redis', name: 'db1', form: 'name.ns' }],
    ['db1.nowhere', undefined],
    ['db1.redis.svc', { namespace: 'redis', name: 'db1', form: 'name.ns.svc' }],
    ['db1.any.svc', { namespace: 'any', name: 'db1', form: 'name.ns.svc' }],
    ['db1.redis.svc.cluster.local', { namespace: 'redis', name: 'db1', form: 'fqdn' }],
    ['db1.redis.svc.cluster', undefined],
    ['a.b.c.svc.cluster.local', undefined],
    ['', undefined],
  ];
  for (const [host, want] of cases) t.same(resolveServiceHost(host, ctx), want, host);
  t.same(resolveServiceHost('db1.redis.svc.corp.example', { ...ctx, clusterDomain: 'corp.example' }), { namespace: 'redis', name: 'db1', form: 'fqdn' });
  t.equal(resolveServiceHost('db1', { ...ctx, namespace: '' }), undefined, 'no namespace known: a short name is not judged');

  const refs: [string, unknown][] = [
    ['gw', { namespace: 'redis', name: 'gw' }],
    ['ns/gw', { namespace: 'ns', name: 'gw' }],
    ['./gw', { namespace: 'redis', name: 'gw' }],
    ['gw.ns', { namespace: 'ns', name: 'gw' }],
    ['gw.ns.svc.cluster.local', { namespace: 'ns', name: 'gw' }],
    ['*/gw', undefined],
    ['ns/', undefined],
  ];
  for (const [ref, want] of refs) t.same(resolveGatewayRef(ref, 'redis'), want, ref);
});

t.test('edit distance and close names', async (t) => {
  t.equal(editDistance('db1', 'db2'), 1);
  t.equal(editDistance('rec', 'rce'), 1, 'a transposition is one edit');
  t.equal(editDistance('', 'abc'), 3);
  t.equal(editDistance('kitten', 'sitting'), 3);
  t.same(closeNames('db2', ['db1', 'db10', 'rec', 'db2']), ['db1', 'db10']);
  t.same(closeNames('DB1', ['db1']), ['db1'], 'case-insensitive');
  t.same(closeNames('redis-gatway', ['redis-gateway', 'other-gateway']), ['redis-gateway']);
  t.same(closeNames('x', []), []);
  // A namespace with 20,000 Services still yields the few close names (speed is measured in bench/).
  const many = Array.from({ length: 20_000 }, (_, i) => `svc-${i}`);
  t.ok(closeNames('svc-12345x', many).includes('svc-12345'), 'the closest of 20,000 names is found');
});
