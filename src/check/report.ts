/**
 * What `check` found, and its three renderings. The JSON form is a stable, documented interface:
 *
 *   {
 *     "version": 1,
 *     "findings": [{
 *       "file": "examples/bad/gateway-host.yaml",  // as given on the command line; "<stdin>" for -
 *       "line": 12,                  // 1-based line of the field the finding is about
 *       "kind": "Gateway", "apiVersion": "networking.istio.io/v1",
 *       "namespace": "istio-system", // metadata.namespace, else --namespace (default "default")
 *       "name": "redis-gateway",
 *       "rule": "gateway-host",      // rule id, as in --rule and the webhook's metrics
 *       "severity": "error",         // "error" | "warning", after --rule
 *       "path": "spec.servers[0].hosts[0]",
 *       "value": "*-redis.example.com",  // the offending value as written; null when missing
 *       "message": "spec.servers[0].hosts[0]: Invalid value: ...",  // the webhook's exact words
 *       "fix": "*.redis.example.com" // what to write instead, when there is one answer; else null
 *     }],
 *     "inputErrors": [{ "file": "a.yaml", "line": 3, "message": "YAML: ..." }],  // line null: whole input
 *     "summary": {
 *       "files": 3, "documents": 9, "objects": 9, "checked": 6, "skipped": 3,
 *       "errors": 1, "warnings": 1, "inputErrors": 0,
 *       "notJudged": [{ "kind": "Service", "namespace": "apps", "reason": "..." }],
 *       "cluster": false, "warningsAsErrors": false,
 *       "exitCode": 1                // 0 clean, 1 errors (or warnings with --warnings-as-errors), 2 input errors
 *     }
 *   }
 *
 * Findings come in input order: files as given (directories sorted by name), documents and List
 * items in file order, and each object's findings as the webhook orders them (errors first).
 */
import type { InputProblem } from './parse.ts';

export interface CheckFinding {
  file: string;
  line: number;
  kind: string;
  apiVersion: string;
  namespace: string;
  name: string;
  rule: string;
  severity: 'error' | 'warning';
  path: string;
  value: unknown;
  message: string;
  fix: string | null;
}

export interface NotJudged {
  kind: 'Service' | 'Gateway';
  namespace: string;
  reason: string;
}

export interface CheckSummary {
  files: number;
  documents: number;
  /** Objects after `List` expansion. */
  objects: number;
  /** Objects of our kinds, judged by the rules. */
  checked: number;
  /** Objects of other kinds (Services, REDBs, anything else): read for the cross-object checks only. */
  skipped: number;
  errors: number;
  warnings: number;
  inputErrors: number;
  /** Namespaces where absence could not be judged, so references into them were not checked. */
  notJudged: NotJudged[];
  cluster: boolean;
  warningsAsErrors: boolean;
  exitCode: 0 | 1 | 2;
}

export interface CheckReport {
  version: 1;
  findings: CheckFinding[];
  inputErrors: { file: string; line: number | null; message: string }[];
  summary: CheckSummary;
}

export function exitCodeOf(s: Pick<CheckSummary, 'errors' | 'warnings' | 'inputErrors' | 'warningsAsErrors'>): 0 | 1 | 2 {
  if (s.inputErrors > 0) return 2;
  if (s.errors > 0 || (s.warningsAsErrors && s.warnings > 0)) return 1;
  return 0;
}

export function inputErrorsOf(problems: InputProblem[]): CheckReport['inputErrors'] {
  return problems.map((p) => ({ file: p.file, line: p.line ?? null, message: p.message }));
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The closing lines of the text and github formats. */
export function summaryLines(s: CheckSummary): string[] {
  const out: string[] = [];
  for (const n of s.notJudged)
    out.push(
      `not judged: references to ${n.kind}s in namespace ${JSON.stringify(n.namespace)}: ${n.reason}` +
        (s.cluster ? '' : '; pass --cluster to look them up in the live cluster'),
    );
  const verdict = s.exitCode === 0 ? 'ok' : s.exitCode === 1 ? 'failed' : 'could not check every input';
  const counts = [plural(s.errors, 'error'), plural(s.warnings, 'warning')];
  if (s.inputErrors > 0) counts.push(plural(s.inputErrors, 'input error'));
  out.push(
    `${verdict}: ${counts.join(', ')}; checked ${plural(s.checked, 'object')}` +
      (s.skipped > 0 ? ` (and read ${s.skipped} of other kinds for references)` : '') +
      ` from ${plural(s.documents, 'document')} in ${plural(s.files, 'file')}` +
      (s.cluster ? ', with the live cluster' : '') +
      (s.warningsAsErrors && s.warnings > 0 && s.errors === 0 ? '; warnings count as errors (--warnings-as-errors)' : ''),
  );
  return out;
}

const where = (file: string, line: number | null) => (line === null ? file : `${file}:${line}`);

/** `file:line: kind namespace/name: <the webhook's message> [severity rule]`, then the summary. */
export function formatText(r: CheckReport): string {
  const lines = r.findings.map(
    (f) => `${f.file}:${f.line}: ${f.kind} ${f.namespace}/${f.name}: ${f.message} [${f.severity} ${f.rule}]`,
  );
  for (const e of r.inputErrors) lines.push(`${where(e.file, e.line)}: input error: ${e.message}`);
  if (lines.length > 0) lines.push('');
  lines.push(...summaryLines(r.summary));
  return `${lines.join('\n')}\n`;
}

export function formatJson(r: CheckReport): string {
  return `${JSON.stringify(r, (_k, v: unknown) => (v === undefined ? null : v), 2)}\n`;
}

/** Workflow-command escaping: https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts */
const escapeData = (s: string) => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const escapeProperty = (s: string) => escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');

function annotation(level: 'error' | 'warning' | 'notice', props: Record<string, string | number | null>, message: string): string {
  const p = Object.entries(props)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k}=${escapeProperty(String(v))}`)
    .join(',');
  return `::${level}${p ? ` ${p}` : ''}::${escapeData(message)}`;
}

/** `::error file=...,line=...::...` annotations on the pull request's files, then the summary. */
export function formatGithub(r: CheckReport): string {
  const lines = r.findings.map((f) =>
    annotation(f.severity, { file: f.file, line: f.line, title: `redis-istio-guard ${f.rule}` }, `${f.kind} ${f.namespace}/${f.name}: ${f.message}`),
  );
  for (const e of r.inputErrors)
    lines.push(annotation('error', { file: e.file, line: e.line, title: 'redis-istio-guard input error' }, e.message));
  const summary = summaryLines(r.summary);
  r.summary.notJudged.forEach((_, i) => lines.push(annotation('notice', { title: 'redis-istio-guard' }, summary[i] ?? '')));
  lines.push(...summary.slice(r.summary.notJudged.length));
  return `${lines.join('\n')}\n`;
}

export type OutputFormat = 'text' | 'json' | 'github';

export const OUTPUT_FORMATS: readonly OutputFormat[] = ['text', 'json', 'github'];

export function format(r: CheckReport, output: OutputFormat): string {
  return output === 'json' ? formatJson(r) : output === 'github' ? formatGithub(r) : formatText(r);
}
