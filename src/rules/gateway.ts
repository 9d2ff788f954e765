/**
 * Gateway rules: every `spec.servers[].hosts` entry follows Istio's grammar exactly
 * (agent.ValidateNamespaceSlashWildcardHostname with isGateway=true).
 */
import { invalid, required, wrongType } from './finding.ts';
import { gatewayHostErrors, leftmostWildcardFix, splitNamespaceHost } from './hostname.ts';
import { arrayOf, field } from './object.ts';
import { defineRule, type Rule } from './rule.ts';
import type { Finding } from './types.ts';

/** Why Istio has each rule, so the message says more than the bare grammar. */
function explain(reason: string): string {
  if (reason.startsWith('partial wildcard'))
    return `${reason}: Istio and Envoy match "*" only as the whole leftmost label`;
  if (reason.startsWith('short names')) return `${reason}: a Gateway host must be a fully qualified name or "*"`;
  return reason;
}

function fixFor(host: string): string | undefined {
  const { namespace, dnsName } = splitNamespaceHost(host);
  const fixed = leftmostWildcardFix(dnsName);
  if (fixed === undefined) return undefined;
  const candidate = namespace === undefined ? fixed : `${namespace}/${fixed}`;
  return gatewayHostErrors(candidate).length === 0 ? candidate : undefined;
}

export const gatewayHost = defineRule(
  'gateway-host',
  'Gateway',
  'Every spec.servers[].hosts entry follows Istio: [namespace/] then "*", "*.domain", an FQDN or an IP; no partial wildcards.',
  (id, obj) => {
    const out: Finding[] = [];
    const servers = arrayOf(field(obj.spec, 'servers'));
    if (servers.length === 0) out.push(required(id, 'spec.servers', 'gateway must have at least one server'));
    servers.forEach((server, i) => {
      const path = `spec.servers[${i}].hosts`;
      const hosts = field(server, 'hosts');
      if (hosts === undefined || hosts === null || (Array.isArray(hosts) && hosts.length === 0)) {
        out.push(required(id, path, 'server config must contain at least one host'));
        return;
      }
      if (!Array.isArray(hosts)) {
        out.push(wrongType(id, path, hosts, 'a list of strings'));
        return;
      }
      hosts.forEach((host, j) => {
        const hostPath = `${path}[${j}]`;
        if (typeof host !== 'string') {
          out.push(wrongType(id, hostPath, host, 'a string'));
          return;
        }
        const reasons = gatewayHostErrors(host);
        const fix = reasons.length > 0 ? fixFor(host) : undefined;
        for (const reason of reasons) out.push(invalid(id, hostPath, host, explain(reason), { fix }));
      });
    });
    return out;
  },
);

export const gatewayRules: Rule[] = [gatewayHost];
