/**
 * From a finding's field path ("spec.tls[0].match[1].sniHosts[2]") to a line in the file the
 * object came from. A YAML document is navigated on its syntax tree; JSON text, which is parsed
 * with JSON.parse for speed, is scanned only when a finding needs a line. A path that does not
 * exist in full (a Required value) gives the line of the deepest part that does.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type Node } from 'yaml';

export type PathSegment = string | number;

/** "spec.tls[0].match[1].sniHosts" → ["spec", "tls", 0, "match", 1, "sniHosts"]. */
export function pathSegments(path: string): PathSegment[] {
  const out: PathSegment[] = [];
  for (const part of path.split('.')) {
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part);
    if (!m) {
      out.push(part);
      continue;
    }
    if (m[1]) out.push(m[1]);
    for (const idx of (m[2] ?? '').matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

/** Maps a field path under one object to a 1-based line. */
export type Locator = (path: string) => number;

/** Line of a node, of the key when it is a map value (so a block names its header line). */
export function yamlLocator(doc: Document, root: Node | null, lineAt: (offset: number) => number): Locator {
  return (path) => {
    let node: unknown = root;
    let offset = (root as Node | null)?.range?.[0] ?? 0;
    for (const seg of pathSegments(path)) {
      if (isAlias(node)) node = node.resolve(doc);
      let next: unknown;
      let at: number | undefined;
      if (isMap(node) && typeof seg === 'string') {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === seg);
        if (pair) {
          next = pair.value;
          at = (isScalar(pair.key) ? pair.key.range?.[0] : undefined) ?? (next as Node | null)?.range?.[0];
        }
      } else if (isSeq(node) && typeof seg === 'number') {
        next = node.items[seg];
        at = (next as Node | undefined)?.range?.[0];
      }
      if (at === undefined) break;
      node = next;
      offset = at;
    }
    return lineAt(offset);
  };
}

/** Offsets of line starts, for a binary search from an offset to a line. */
export function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}

export function lineOfOffset(starts: number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((starts[mid] ?? 0) <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}

const WS = new Set([' ', '\t', '\n', '\r']);

/**
 * A scanner over JSON text that JSON.parse has already accepted: it only needs to skip values and
 * find keys, never to report errors. Iterative, so nesting depth cannot exhaust the stack.
 */
class JsonScanner {
  private readonly text: string;
  constructor(text: string) {
    this.text = text;
  }

  ws(i: number): number {
    while (i < this.text.length && WS.has(this.text[i] as string)) i++;
    return i;
  }

  /** i at the opening quote; returns the index after the closing quote. */
  endOfString(i: number): number {
    for (let j = i + 1; j < this.text.length; j++) {
      const c = this.text[j];
      if (c === '\\') j++;
      else if (c === '"') return j + 1;
    }
    return this.text.length;
  }

  /** i at the first character of a value; returns the index after it. */
  endOfValue(i: number): number {
    const c = this.text[i];
    if (c === '"') return this.endOfString(i);
    if (c !== '{' && c !== '[') {
      while (i < this.text.length && !WS.has(this.text[i] as string) && !',]}'.includes(this.text[i] as string)) i++;
      return i;
    }
    let depth = 0;
    for (let j = i; j < this.text.length; j++) {
      const d = this.text[j];
      if (d === '"') j = this.endOfString(j) - 1;
      else if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') {
        depth--;
        if (depth === 0) return j + 1;
      }
    }
    return this.text.length;
  }

  /** Offset of the member's key (objects) or element (arrays), or undefined. */
  child(i: number, seg: PathSegment): { key: number; value: number } | undefined {
    const open = this.text[i];
    if (open === '{' && typeof seg === 'string') {
      let j = this.ws(i + 1);
      while (this.text[j] === '"') {
        const keyEnd = this.endOfString(j);
        const key = JSON.parse(this.text.slice(j, keyEnd)) as string;
        const value = this.ws(this.ws(keyEnd) + 1);
        if (key === seg) return { key: j, value };
        j = this.ws(this.endOfValue(value));
        if (this.text[j] !== ',') return undefined;
        j = this.ws(j + 1);
      }
      return undefined;
    }
    if (open === '[' && typeof seg === 'number') {
      let j = this.ws(i + 1);
      for (let n = 0; j < this.text.length && this.text[j] !== ']'; n++) {
        if (n === seg) return { key: j, value: j };
        j = this.ws(this.endOfValue(j));
        if (this.text[j] !== ',') return undefined;
        j = this.ws(j + 1);
      }
    }
    return undefined;
  }
}

/** Line starts of a text, computed once and shared by the locators of its objects. */
export function lazyLines(text: string): (offset: number) => number {
  let starts: number[] | undefined;
  return (offset) => lineOfOffset((starts ??= lineStarts(text)), offset);
}

/** Offsets of the elements of the top-level object's `items` array, in one pass. */
export function jsonItemOffsets(text: string): number[] {
  const scanner = new JsonScanner(text);
  const items = scanner.child(scanner.ws(0), 'items');
  if (!items || text[items.value] !== '[') return [];
  const out: number[] = [];
  let j = scanner.ws(items.value + 1);
  while (j < text.length && text[j] !== ']') {
    out.push(j);
    j = scanner.ws(scanner.endOfValue(j));
    if (text[j] !== ',') break;
    j = scanner.ws(j + 1);
  }
  return out;
}

/** A locator for the JSON value that starts at `start` (the whole text by default). */
export function jsonLocator(text: string, lineAt: (offset: number) => number, start?: number): Locator {
  const scanner = new JsonScanner(text);
  return (path) => {
    let at = start ?? scanner.ws(0);
    let line = at;
    for (const seg of pathSegments(path)) {
      const c = scanner.child(at, seg);
      if (!c) break;
      at = c.value;
      line = c.key;
    }
    return lineAt(line);
  };
}
