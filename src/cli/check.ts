/** `redis-istio-guard check`: the webhook's rules and words, offline, for CI. */
import { Command, Option } from 'commander';
import { parseEnforcement } from '../config.ts';
import { ClusterUnavailable } from '../check/cluster.ts';
import { OUTPUT_FORMATS, type OutputFormat } from '../check/report.ts';
import { runCheck, type CheckIO } from '../check/run.ts';
import { builtinRules } from '../rules/engine.ts';

export interface CheckCommandDeps {
  io?: CheckIO;
  /** Receives the exit code; by default it becomes process.exitCode, so output is flushed before exit. */
  setExitCode?: (code: number) => void;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

const HELP = `
Reads files, directories (recursively: .yaml, .yml, .json; dot entries and node_modules are
skipped) and stdin (-): multi-document YAML, JSON, kind: List, helm template and kustomize build
output. Objects other than RedisEnterpriseClusters, Gateways and VirtualServices are not judged,
but their Services, Gateways, RECs and REDBs answer the cross-object checks. Without --cluster a
namespace with no Service (or REC or REDB) in the input is not judged; the summary says so.

Output: text is "file:line: kind namespace/name: <the webhook's message> [severity rule]".
Exit codes: 0 no errors, 1 errors (or warnings with --warnings-as-errors), 2 the check could not
be done (bad flags, unreadable or unparsable input, no cluster with --cluster).

Examples:
  redis-istio-guard check examples/good
  helm template my-release ./chart | redis-istio-guard check - --output github
  kustomize build overlays/prod | redis-istio-guard check - --cluster --context prod`;

export function registerCheck(program: Command, deps: CheckCommandDeps = {}): Command {
  return program
    .command('check')
    .description('check manifests with the webhook rules, offline (CI mode)')
    .argument('[paths...]', 'files, directories, or - for stdin')
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('text'))
    .option('--cluster', 'also look up Services and Gateways in the live cluster (read only)')
    .option('--kubeconfig <file>', 'kubeconfig for --cluster (default: $KUBECONFIG, ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context for --cluster')
    .option('--warnings-as-errors', 'exit 1 when there are warnings')
    .option('--rule <id=mode>', 'set a rule to deny, warn or off (repeatable)', collect)
    .option('-n, --namespace <ns>', 'namespace of objects that name none', 'default')
    .option('--cluster-domain <domain>', 'cluster domain for name.ns.svc.<domain> hosts', 'cluster.local')
    .addHelpText('after', HELP)
    .action(async (paths: string[], o) => {
      if (paths.length === 0) throw new Error('check: give files, directories, or - for stdin');
      if ((o.kubeconfig || o.context) && !o.cluster) throw new Error('check: --kubeconfig and --context go with --cluster');
      const enforcement = parseEnforcement(o.rule ?? [], builtinRules.map((r) => r.id));
      const io: CheckIO = deps.io ?? { stdout: (s) => void process.stdout.write(s), stdin: process.stdin };
      let code: number;
      try {
        code = await runCheck(
          {
            paths,
            output: o.output as OutputFormat,
            warningsAsErrors: o.warningsAsErrors === true,
            enforcement,
            namespace: o.namespace,
            clusterDomain: o.clusterDomain,
            cluster: o.cluster ? { kubeconfig: o.kubeconfig, context: o.context } : undefined,
          },
          io,
        );
      } catch (err) {
        if (err instanceof ClusterUnavailable) throw new Error(`check --cluster: ${err.message}`);
        throw err;
      }
      (deps.setExitCode ?? ((c: number) => void (process.exitCode = c)))(code);
    });
}
