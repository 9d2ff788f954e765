import t from 'tap';
import type { KubeObject } from '../../../src/rules/types.ts';
import { defaultContext } from '../../../src/rules/context.ts';
import { evaluate } from '../../../src/rules/engine.ts';
import { virtualService } from '../../fixtures/objects.ts';

const judge = (obj: KubeObject) => evaluate('VirtualService', obj, defaultContext('redis'));
const brief = (obj: KubeObject) => judge(obj).map((f) => `${f.severity} ${f.rule} ${f.message}`);

t.test('the documented good shape passes', async (t) => {
  // One wildcard host covers both names: Istio refuses "api.redis.example.com" next to
  // "*.redis.example.com" as overlapping hosts.
  const vs = virtualService(['*.redis.example.com'], [
    { sniHosts: ['api.redis.example.com'], host: 'rec', port: 9443 },
    { sniHosts: ['db1.redis.example.com'], host: 'db1', port: 12000 },
  ]);
  t.same(brief(vs), []);
  t.same(brief(virtualService(['*.redis.example.com'], [{ sniHosts: ['db1.redis.example.com'], host: 'db1.redis.svc.cluster.local' }])), [], 'no port is fine');
});

t.test('hosts', async (t) => {
  const cases: { hosts: unknown; gateways?: unknown; want: string[] }[] = [
    { hosts: ['*.redis.example.com'], want: [] },
    {
      hosts: ['*-redis.example.com'],
      want: [
        'error vs-host spec.hosts[0]: Invalid value: "*-redis.example.com": partial wildcard "*-redis.example.com" not allowed: no Gateway host can match it (Istio rejects partial wildcards in Gateways) and Envoy does not support them in SNI names; use "*.redis.example.com"',
        'error vs-sni-covered spec.tls[0].match[0].sniHosts[0]: Invalid value: "api.redis.example.com": SNI host "api.redis.example.com" is not a compatible subset of any of the virtual service hosts: [*-redis.example.com]',
      ],
    },
    { hosts: ['redis.*.example.com', 'api.redis.example.com'], want: ['error vs-host spec.hosts[0]: Invalid value: "redis.*.example.com": domain name "*.example.com" invalid (label "*" invalid)'] },
    { hosts: ['ns/api.redis.example.com', 'api.redis.example.com'], want: ['error vs-host spec.hosts[0]: Invalid value: "ns/api.redis.example.com": domain name "ns/api.redis.example.com" invalid (label "ns/api" invalid)'] },
    { hosts: ['rec', 'api.redis.example.com'], want: [], gateways: ['mesh'] },
    { hosts: ['10.0.0.1', 'api.redis.example.com'], want: [] },
    { hosts: ['*'], gateways: ['istio-system/redis-gateway'], want: [] },
    { hosts: ['*'], gateways: ['mesh'], want: ['error vs-host spec.hosts[0]: Invalid value: "*": wildcard host * is not allowed for virtual services bound to the mesh gateway'] },
    { hosts: ['*', 'api.redis.example.com'], gateways: [], want: ['error vs-host spec.hosts[0]: Invalid value: "*": wildcard host * is not allowed for virtual services bound to the mesh gateway'] },
    {
      hosts: ['*.redis.example.com', 'api.redis.example.com'],
      want: ['error vs-duplicate-host spec.hosts[1]: Invalid value: "api.redis.example.com": duplicate hosts in virtual service: *.redis.example.com & api.redis.example.com'],
    },
    { hosts: 'api.redis.example.com', want: ['error vs-host spec.hosts: Invalid value: "api.redis.example.com": must be a list of strings'] },
  ];
  for (const c of cases) {
    const vs = virtualService(c.hosts, undefined, c.gateways !== undefined ? { gateways: c.gateways } : {});
    t.same(brief(vs).filter((m) => !m.includes('vs-sni-covered') || c.want.some((w) => w.includes('vs-sni-covered'))), c.want, JSON.stringify(c));
  }
});

t.test('delegate VirtualServices', async (t) => {
  t.same(brief(virtualService([], undefined)), [
    'error vs-host spec.gateways: Forbidden: delegate virtual service must have no gateways specified',
    'error vs-host spec.tls: Forbidden: delegate virtual service must have no tls route specified',
    'error vs-sni-covered spec.tls[0].match[0].sniHosts[0]: Invalid value: "api.redis.example.com": SNI host "api.redis.example.com" is not a compatible subset of any of the virtual service hosts: []',
  ]);
});

t.test('sniHosts', async (t) => {
  const cases: { hosts: string[]; sni: unknown; gateways?: string[]; want: string[] }[] = [
    {
      hosts: ['*.redis.example.com'],
      sni: ['db1-redis.example.com'],
      want: [
        'error vs-sni-covered spec.tls[0].match[0].sniHosts[0]: Invalid value: "db1-redis.example.com": SNI host "db1-redis.example.com" is not a compatible subset of any of the virtual service hosts: [*.redis.example.com]; use "db1.redis.example.com"',
      ],
    },
    {
      hosts: ['*-redis.example.com'],
      sni: ['*-redis.example.com'],
      want: [
        'error vs-host spec.hosts[0]: Invalid value: "*-redis.example.com": partial wildcard "*-redis.example.com" not allowed: no Gateway host can match it (Istio rejects partial wildcards in Gateways) and Envoy does not support them in SNI names; use "*.redis.example.com"',
        'error vs-sni-host spec.tls[0].match[0].sniHosts[0]: Invalid value: "*-redis.example.com": partial wildcard "*-redis.example.com" not allowed: no Gateway host can match it (Istio rejects partial wildcards in Gateways) and Envoy does not support them in SNI names; use "*.redis.example.com"',
      ],
    },
    { hosts: ['*.redis.example.com'], sni: ['*.redis.example.com'], want: [] },
    {
      hosts: ['*.redis.example.com'],
      sni: ['db1.*.example.com'],
      want: ['error vs-sni-host spec.tls[0].match[0].sniHosts[0]: Invalid value: "db1.*.example.com": domain name "*.example.com" invalid (label "*" invalid)'],
    },
    {
      hosts: ['*.redis.example.com'],
      sni: ['10.1.1.1'],
      want: ['warning vs-sni-host spec.tls[0].match[0].sniHosts[0]: Invalid value: "10.1.1.1": using an IP address ("10.1.1.1") goes against SNI spec and most clients do not support this'],
    },
    { hosts: ['*.redis.example.com'], sni: ['outbound_.443_._.db1.redis.example.com'], want: [] },
    {
      hosts: ['*.redis.example.com'],
      sni: ['outbound_.443_._.db1.redis.example.com'],
      gateways: ['mesh'],
      want: [
        'error vs-sni-host spec.tls[0].match[0].sniHosts[0]: Invalid value: "outbound_.443_._.db1.redis.example.com": domain name "outbound_.443_._.db1.redis.example.com" invalid (label "outbound_" invalid)',
      ],
    },
    { hosts: ['*.redis.example.com'], sni: [], want: ['error vs-routes spec.tls[0].match[0].sniHosts: Required value: TLS match must have at least one SNI host: passthrough routing needs the SNI name'] },
    { hosts: ['*.redis.example.com'], sni: [5], want: ['error vs-sni-host spec.tls[0].match[0].sniHosts[0]: Invalid value: 5: must be a string'] },
  ];
  for (const c of cases) {
    const vs = virtualService(c.hosts, [{ sniHosts: c.sni, host: 'db1', port: 12000 }], c.gateways ? { gateways: c.gateways } : {});
    t.same(brief(vs), c.want, JSON.stringify(c.sni));
  }
});

t.test('routes and destinations', async (t) => {
  const base = (extraSpec: Record<string, unknown>) =>
    brief(virtualService(['*.redis.example.com'], [{ sniHosts: ['db1.redis.example.com'], host: 'db1', port: 12000 }], { extraSpec }));
  t.same(base({ tls: [] }), ['error vs-routes spec: Required value: http, tcp or tls must be provided in virtual service']);
  t.same(base({ tls: [{ route: [{ destination: { host: 'db1' } }] }] }), ['error vs-routes spec.tls[0].match: Required value: TLS route must have at least one match condition']);
  t.same(base({ tls: [{ match: [null], route: [{ destination: { host: 'db1' } }] }] }), ['error vs-routes spec.tls[0].match[0]: Required value: TLS match may not be null']);
  t.same(base({ tls: [{ match: [{ sniHosts: ['db1.redis.example.com'] }] }] }), ['error vs-routes spec.tls[0].route: Required value: TLS route is required']);
  t.same(base({ tls: [{ match: [{ port: 70000, sniHosts: ['db1.redis.example.com'] }], route: [{ destination: { host: 'db1' } }] }] }), [
    'error vs-routes spec.tls[0].match[0].port: Invalid value: 70000: port number 70000 must be in the range 1..65535',
  ]);
  const dest = (destination: unknown) => base({ tls: [{ match: [{ sniHosts: ['db1.redis.example.com'] }], route: [{ destination }] }] });
  t.same(dest(undefined), ['error vs-destination-host spec.tls[0].route[0].destination: Required value: destination is required']);
  t.same(dest({ host: '*' }), ['error vs-destination-host spec.tls[0].route[0].destination.host: Invalid value: "*": invalid destination host *']);
  t.same(dest({ host: '*.redis.svc.cluster.local' }), [
    'error vs-destination-host spec.tls[0].route[0].destination.host: Invalid value: "*.redis.svc.cluster.local": a destination names one Service, not a wildcard',
  ]);
  t.same(dest({ host: 'redis/db1' }), ['error vs-destination-host spec.tls[0].route[0].destination.host: Invalid value: "redis/db1": domain name "redis/db1" invalid (label "redis/db1" invalid)']);
  t.same(dest({ host: 'db1', port: {} }), ['error vs-destination-port spec.tls[0].route[0].destination.port.number: Invalid value: 0: port number 0 must be in the range 1..65535']);
  t.same(dest({ host: 'db1', port: { number: 65536 } }), [
    'error vs-destination-port spec.tls[0].route[0].destination.port.number: Invalid value: 65536: port number 65536 must be in the range 1..65535',
  ]);
  t.same(dest({ host: 'db1', port: { number: '12000' } }), ['error vs-destination-port spec.tls[0].route[0].destination.port.number: Invalid value: "12000": must be an integer']);
  t.same(dest({ host: 'db1', port: { number: 65535 } }), []);
  t.same(base({ tcp: [{ route: [{ destination: { host: 'db1', port: { number: 0 } } }] }] }), [
    'error vs-destination-port spec.tcp[0].route[0].destination.port.number: Invalid value: 0: port number 0 must be in the range 1..65535',
  ]);
});

t.test('gateway references', async (t) => {
  const refs = (gateways: unknown) => brief(virtualService(['*.redis.example.com'], [{ sniHosts: ['db1.redis.example.com'] }], { gateways }));
  t.same(refs(['mesh', 'redis-gateway', 'istio-system/redis-gateway']), []);
  t.same(refs(['*/redis-gateway']), ['error vs-gateway-ref spec.gateways[0]: Invalid value: "*/redis-gateway": invalid value for namespace: "*"']);
  t.same(refs(['istio-system/*']), ['error vs-gateway-ref spec.gateways[0]: Invalid value: "istio-system/*": invalid value for gateway name: "*"']);
  t.same(refs(['/gw']), [
    'error vs-gateway-ref spec.gateways[0]: Invalid value: "/gw": config namespace and gateway name cannot be empty',
    'error vs-gateway-ref spec.gateways[0]: Invalid value: "/gw": invalid value for namespace: ""',
  ]);
  t.same(refs(['redis-gateway.istio-system']), [
    'warning vs-gateway-ref spec.gateways[0]: Invalid value: "redis-gateway.istio-system": using legacy gatewayName format "redis-gateway.istio-system"; prefer the <namespace>/<name> format: "istio-system/redis-gateway"',
  ]);
  t.same(refs(['b@dgateway']), ['error vs-gateway-ref spec.gateways[0]: Invalid value: "b@dgateway": domain name "b@dgateway" invalid (label "b@dgateway" invalid)']);
  const inMatch = virtualService(['*.redis.example.com'], [{ sniHosts: ['db1.redis.example.com'] }]);
  (inMatch.spec.tls[0]?.match[0] as Record<string, unknown>).gateways = ['Bad_NS/gw'];
  t.same(brief(inMatch), ['error vs-gateway-ref spec.tls[0].match[0].gateways[0]: Invalid value: "Bad_NS/gw": invalid value for namespace: "Bad_NS"']);
});

t.test('malformed objects never throw', async (t) => {
  for (const spec of [undefined, null, 'x', 5, [], { hosts: [null], tls: 'x' }, { tls: [null, 5, { match: 'x', route: 7 }] }, { http: [{ route: [null] }] }]) {
    t.doesNotThrow(() => judge({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', spec }), JSON.stringify(spec));
  }
});
