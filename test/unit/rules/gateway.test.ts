import t from 'tap';
import type { KubeObject } from '../../../src/rules/types.ts';
import { defaultContext } from '../../../src/rules/context.ts';
import { evaluate } from '../../../src/rules/engine.ts';
import { gateway } from '../../fixtures/objects.ts';

const judge = (obj: KubeObject) => evaluate('Gateway', obj, defaultContext('istio-system'));

t.test('gateway hosts', async (t) => {
  const cases: { hosts: unknown; messages: string[]; fix?: string }[] = [
    { hosts: ['*.redis.example.com'], messages: [] },
    { hosts: ['api.redis.example.com', '*.redis.example.com'], messages: [] },
    { hosts: ['redis/*.redis.example.com', './api.redis.example.com', '*/x.example.com', '*'], messages: [] },
    { hosts: ['1.1.1.1'], messages: [] },
    {
      hosts: ['*-redis.example.com'],
      messages: [
        'spec.servers[0].hosts[0]: Invalid value: "*-redis.example.com": partial wildcard "*-redis.example.com" not allowed: Istio and Envoy match "*" only as the whole leftmost label; use "*.redis.example.com"',
      ],
      fix: '*.redis.example.com',
    },
    {
      hosts: ['ok.example.com', 'redis/*redis.example.com'],
      messages: [
        'spec.servers[0].hosts[1]: Invalid value: "redis/*redis.example.com": partial wildcard "*redis.example.com" not allowed: Istio and Envoy match "*" only as the whole leftmost label; use "redis/*.redis.example.com"',
      ],
      fix: 'redis/*.redis.example.com',
    },
    {
      hosts: ['redis.*.example.com'],
      messages: [
        'spec.servers[0].hosts[0]: Invalid value: "redis.*.example.com": domain name "*.example.com" invalid (label "*" invalid)',
        'spec.servers[0].hosts[0]: Invalid value: "redis.*.example.com": partial wildcard "redis.*.example.com" not allowed: Istio and Envoy match "*" only as the whole leftmost label',
      ],
    },
    {
      hosts: ['redis'],
      messages: ['spec.servers[0].hosts[0]: Invalid value: "redis": short names (non FQDN) are not allowed: a Gateway host must be a fully qualified name or "*"'],
    },
    { hosts: ['~/a.example.com'], messages: ['spec.servers[0].hosts[0]: Invalid value: "~/a.example.com": invalid namespace value "~" in gateway'] },
    { hosts: [], messages: ['spec.servers[0].hosts: Required value: server config must contain at least one host'] },
    { hosts: undefined, messages: ['spec.servers[0].hosts: Required value: server config must contain at least one host'] },
    { hosts: 'a.example.com', messages: ['spec.servers[0].hosts: Invalid value: "a.example.com": must be a list of strings'] },
    { hosts: [7], messages: ['spec.servers[0].hosts[0]: Invalid value: 7: must be a string'] },
  ];
  for (const c of cases) {
    const found = judge(gateway(c.hosts));
    t.same(found.map((f) => f.message), c.messages, JSON.stringify(c.hosts));
    t.ok(found.every((f) => f.rule === 'gateway-host' && f.severity === 'error'));
    if (c.fix) t.equal(found[0]?.fix, c.fix);
  }
});

t.test('servers', async (t) => {
  t.same(judge(gateway([], { servers: [] })).map((f) => f.message), ['spec.servers: Required value: gateway must have at least one server']);
  const two = gateway([], {
    servers: [
      { port: { number: 443, name: 'tls', protocol: 'TLS' }, tls: { mode: 'PASSTHROUGH' }, hosts: ['*.redis.example.com'] },
      { port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*-web.example.com'] },
    ],
  });
  t.same(judge(two).map((f) => f.path), ['spec.servers[1].hosts[0]']);
  t.same(judge({ apiVersion: 'networking.istio.io/v1', kind: 'Gateway', spec: { servers: [null, 'x'] } }).map((f) => f.path), [
    'spec.servers[0].hosts',
    'spec.servers[1].hosts',
  ], 'malformed servers do not throw');
});
