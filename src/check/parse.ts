/**
 * Text to Kubernetes objects, each with the line it starts on and a locator for its fields.
 * Multi-document YAML (what `helm template` and `kustomize build` print), JSON, and `kind: List`
 * (or any `*List` with items, as `kubectl get -o yaml` prints). Malformed input is reported
 * with its line; what is wrong in one document does not stop the next.
 */
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node } from 'yaml';
import { kindOfObject } from '../rules/engine.ts';
import { isRecord } from '../rules/object.ts';
import { jsonItemOffsets, jsonLocator, lazyLines, yamlLocator, type Locator } from './locate.ts';

export interface ManifestObject {
  file: string;
  /** 1-based line where the object starts. */
  line: number;
  object: Record<string, unknown>;
  /** Line of a field path of this object, e.g. "spec.hosts[0]". */
  locate: Locator;
}

export interface InputProblem {
  file: string;
  /** 1-based; absent when the whole input could not be read. */
  line?: number;
  message: string;
}

export interface ParsedText {
  objects: ManifestObject[];
  /** Non-empty documents, before `List` expansion. */
  documents: number;
  problems: InputProblem[];
}

/** Deeper than any real manifest (a CRD schema stays under 50), shallow enough for every recursion. */
export const MAX_DEPTH = 200;
/** The `yaml` default: more alias expansions than this in one document is a billion-laughs bomb. */
export const MAX_ALIASES = 100;

/** Depth of a parsed value, counted iteratively, stopping as soon as it passes `limit`. */
export function depthExceeds(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number];
    if (typeof v !== 'object' || v === null) continue;
    if (d > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (typeof child === 'object' && child !== null) stack.push([child, d + 1]);
  }
  return false;
}

const firstLine = (s: string) => s.split('\n')[0]?.trim() ?? s;

function isList(v: Record<string, unknown>): boolean {
  return typeof v.kind === 'string' && v.kind.endsWith('List') && typeof v.apiVersion === 'string' && Array.isArray(v.items);
}

const tooDeep = `nested deeper than ${MAX_DEPTH} levels; no Kubernetes object is`;

function parseJson(file: string, text: string, value: unknown): ParsedText {
  const lineAt = lazyLines(text);
  const start = /\S/.exec(text)?.index ?? 0;
  const out: ParsedText = { objects: [], documents: 1, problems: [] };
  if (depthExceeds(value, MAX_DEPTH)) {
    out.problems.push({ file, line: lineAt(start), message: tooDeep });
    return out;
  }
  if (!isRecord(value)) return out;
  if (isList(value)) {
    const offsets = jsonItemOffsets(text);
    (value.items as unknown[]).forEach((item, i) => {
      const at = offsets[i] ?? start;
      if (isRecord(item)) out.objects.push({ file, line: lineAt(at), object: item, locate: jsonLocator(text, lineAt, at) });
    });
  } else {
    out.objects.push({ file, line: lineAt(start), object: value, locate: jsonLocator(text, lineAt, start) });
  }
  return out;
}

function parseYaml(file: string, text: string): ParsedText {
  const out: ParsedText = { objects: [], documents: 0, problems: [] };
  const lines = new LineCounter();
  const lineAt = (offset: number) => lines.linePos(offset).line;
  let docs: ReturnType<typeof parseAllDocuments>;
  try {
    docs = parseAllDocuments(text, { lineCounter: lines, merge: true, uniqueKeys: true, prettyErrors: false });
  } catch (err) {
    // The parser recurses on nesting; a stack overflow is the only way it throws.
    out.problems.push({ file, line: 1, message: err instanceof RangeError ? tooDeep : `YAML: ${firstLine(String(err))}` });
    return out;
  }
  // Only objects the rules judge can have findings: the others keep no syntax tree alive.
  const locator = (doc: Document, obj: unknown, node: Node | null, line: number): Locator =>
    kindOfObject(obj) ? yamlLocator(doc, node, lineAt) : () => line;
  for (const doc of docs) {
    const start = doc.contents?.range?.[0] ?? doc.range?.[0] ?? 0;
    if (doc.errors.length > 0) {
      const err = doc.errors[0];
      out.documents++;
      out.problems.push({ file, line: lineAt(err?.pos[0] ?? start), message: `YAML: ${firstLine(err?.message ?? 'does not parse')}` });
      continue;
    }
    // An empty document (helm prints one per template that renders nothing) holds a null scalar.
    if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) continue;
    out.documents++;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (err) {
      const message =
        err instanceof RangeError
          ? tooDeep
          : /alias/i.test(String(err))
            ? `YAML: more than ${MAX_ALIASES} alias expansions (a "billion laughs" alias bomb?)`
            : `YAML: ${firstLine(err instanceof Error ? err.message : String(err))}`;
      out.problems.push({ file, line: lineAt(start), message });
      continue;
    }
    if (depthExceeds(value, MAX_DEPTH)) {
      out.problems.push({ file, line: lineAt(start), message: tooDeep });
      continue;
    }
    if (!isRecord(value)) continue;
    if (isList(value)) {
      const itemsNode = isMap(doc.contents) ? doc.contents.get('items', true) : undefined;
      (value.items as unknown[]).forEach((item, i) => {
        const node = (isSeq(itemsNode) ? itemsNode.items[i] : undefined) as Node | undefined;
        const at = node?.range?.[0] ?? start;
        if (isRecord(item)) out.objects.push({ file, line: lineAt(at), object: item, locate: locator(doc, item, node ?? null, lineAt(at)) });
      });
    } else {
      out.objects.push({ file, line: lineAt(start), object: value, locate: locator(doc, value, doc.contents, lineAt(start)) });
    }
  }
  return out;
}

/** Parses one input. JSON goes through JSON.parse (fast on large files); anything else is YAML. */
export function parseManifests(file: string, text: string): ParsedText {
  const first = /\S/.exec(text)?.[0];
  if (first === '{' || first === '[') {
    let value: unknown;
    let ok = false;
    try {
      value = JSON.parse(text);
      ok = true;
    } catch {
      // Not JSON: YAML flow style, or broken. The YAML parser says where.
    }
    if (ok) return parseJson(file, text, value);
  }
  return parseYaml(file, text);
}
