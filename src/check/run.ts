/**
 * `check`: read manifests, index the objects the cross-object rules look up, judge each of our
 * objects with the webhook's engine as a CREATE, and report. The engine call and the context are
 * the webhook's, so the verdicts and the words are the same as at `kubectl apply` time.
 */
import type { Readable } from 'node:stream';
import { alwaysComplete, ClusterIndex } from '../cluster/index.ts';
import type { ClusterView, Enforcement, RuleContext } from '../rules/context.ts';
import { decide, kindOfObject } from '../rules/engine.ts';
import { field, stringOf } from '../rules/object.ts';
import type { Finding } from '../rules/types.ts';
import { listLiveCluster, type LiveClusterOptions } from './cluster.ts';
import { loadInputs, type LoadResult } from './load.ts';
import type { ManifestObject } from './parse.ts';
import {
  exitCodeOf,
  format,
  inputErrorsOf,
  type CheckFinding,
  type CheckReport,
  type NotJudged,
  type OutputFormat,
} from './report.ts';

export interface CheckOptions {
  paths: string[];
  output: OutputFormat;
  warningsAsErrors: boolean;
  enforcement: Record<string, Enforcement>;
  /** Namespace of objects that name none, as `kubectl apply -n` would use. */
  namespace: string;
  clusterDomain: string;
  /** Also read the live cluster (read only). */
  cluster?: LiveClusterOptions | undefined;
  maxBytes?: number;
}

export interface CheckIO {
  stdout(text: string): void;
  stdin?: Readable;
}

/** Records which namespaces a rule could not judge, without changing what the rules see. */
function observed(view: ClusterView, notJudged: Map<string, NotJudged>): ClusterView {
  return new Proxy(view, {
    get(target, prop, receiver) {
      if (prop === 'complete')
        return (kind: 'Service' | 'Gateway', namespace: string) => {
          const complete = target.complete(kind, namespace);
          if (!complete) {
            const key = `${kind}\u0000${namespace}`;
            if (!notJudged.has(key)) notJudged.set(key, { kind, namespace, reason: target.incompleteReason?.(kind, namespace) ?? '' });
          }
          return complete;
        };
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

/**
 * Adds the input's Services, Gateways, RECs, REDBs and Namespaces to the index. The input is what
 * is about to be applied: it replaces what the cluster holds under the same name.
 */
export function indexInputs(objects: readonly ManifestObject[], namespace: string, index = new ClusterIndex()): ClusterIndex {
  for (const m of objects) index.upsert(m.object, undefined, namespace);
  return index;
}

/** Judges loaded manifests; `index` already holds the live cluster's objects when --cluster is on. */
export function judge(loaded: LoadResult, opts: Omit<CheckOptions, 'paths' | 'output'>, index = new ClusterIndex()): CheckReport {
  if (opts.cluster) index.setCompleteness(alwaysComplete);
  indexInputs(loaded.objects, opts.namespace, index);
  const notJudged = new Map<string, NotJudged>();
  const cluster = observed(index, notJudged);

  const findings: CheckFinding[] = [];
  let checked = 0;
  for (const m of loaded.objects) {
    const kind = kindOfObject(m.object);
    if (!kind) continue;
    checked++;
    const meta = field(m.object, 'metadata');
    const namespace = stringOf(field(meta, 'namespace')) || opts.namespace;
    const ctx: RuleContext = { namespace, clusterDomain: opts.clusterDomain, cluster };
    const decision = decide({ operation: 'CREATE', kind, object: m.object }, ctx, { enforcement: opts.enforcement });
    // A rule that cannot judge a reference says so in a notice naming the reason; the webhook
    // sends it as a warning. Here it is not a finding: the summary lists what was not judged.
    const reasons = [...notJudged.values()].map((n) => n.reason).filter(Boolean);
    const skipNotice = (f: Finding) => f.notice === true && reasons.some((r) => f.message.includes(r));
    for (const f of decision.findings.filter((f) => !skipNotice(f)))
      findings.push({
        file: m.file,
        line: m.locate(f.path),
        kind: String(m.object.kind),
        apiVersion: String(m.object.apiVersion),
        namespace,
        name: stringOf(field(meta, 'name')) ?? '',
        rule: f.rule,
        severity: f.severity,
        path: f.path,
        value: f.value === undefined ? null : f.value,
        message: f.message,
        fix: f.fix ?? null,
      });
  }
  const errors = findings.filter((f) => f.severity === 'error').length;
  const summary = {
    files: loaded.files,
    documents: loaded.documents,
    objects: loaded.objects.length,
    checked,
    skipped: loaded.objects.length - checked,
    errors,
    warnings: findings.length - errors,
    inputErrors: loaded.problems.length,
    notJudged: [...notJudged.values()].sort((a, b) => (a.namespace + a.kind < b.namespace + b.kind ? -1 : 1)),
    cluster: opts.cluster !== undefined,
    warningsAsErrors: opts.warningsAsErrors,
    exitCode: 0 as 0 | 1 | 2,
  };
  summary.exitCode = exitCodeOf(summary);
  return { version: 1, findings, inputErrors: inputErrorsOf(loaded.problems), summary };
}

/** The whole command. Returns the exit code; writes the report to io.stdout. Throws only for exit-2 failures with no report. */
export async function runCheck(opts: CheckOptions, io: CheckIO): Promise<number> {
  const index = new ClusterIndex();
  // The live cluster first, so a failure to reach it is reported before any work is done.
  if (opts.cluster) await listLiveCluster(index, opts.cluster);
  const loaded = await loadInputs(opts.paths, { ...(io.stdin ? { stdin: io.stdin } : {}), ...(opts.maxBytes ? { maxBytes: opts.maxBytes } : {}) });
  const report = judge(loaded, opts, index);
  io.stdout(format(report, opts.output));
  return report.summary.exitCode;
}
