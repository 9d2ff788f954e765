/**
 * Inputs of `check`: files, directories (recursively: .yaml, .yml, .json) and stdin (`-`).
 * A path that cannot be read is a problem of that path only: the others are still checked.
 * Nothing here can block: only regular files are opened (a FIFO without a writer would wait
 * forever), sizes are capped, and stdin is read only when asked for with `-`.
 */
import { opendir, readFile, realpath, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { parseManifests, type InputProblem, type ManifestObject } from './parse.ts';

/** Larger than any manifest set a cluster would take (3 MiB per object); bounds time and memory. */
export const MAX_INPUT_BYTES = 32 * 1024 * 1024;

export const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

export const STDIN_NAME = '<stdin>';

export interface LoadResult {
  objects: ManifestObject[];
  problems: InputProblem[];
  /** Inputs read: files and stdin. */
  files: number;
  documents: number;
}

export interface LoadOptions {
  stdin?: Readable;
  maxBytes?: number;
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'ENOTDIR':
      return 'not a directory: a part of the path is a file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    default:
      return e.message ?? String(err);
  }
}

/** UTF-8 text of a manifest, or why it is not one. */
export function decode(bytes: Uint8Array): { text: string } | { error: string; offset: number } {
  const nul = bytes.indexOf(0);
  if (nul >= 0) return { error: 'binary data (a NUL byte): not YAML or JSON text (UTF-16 text is not accepted either)', offset: nul };
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return { text: text.charCodeAt(0) === 0xfeff ? text.slice(1) : text };
  } catch {
    // The first replacement character that does not stand for an encoded U+FFFD marks the bad byte.
    const lossy = new TextDecoder('utf-8').decode(bytes);
    let offset = 0;
    let from = 0;
    for (let i = lossy.indexOf('\uFFFD'); i >= 0; i = lossy.indexOf('\uFFFD', i + 1)) {
      offset += Buffer.byteLength(lossy.slice(from, i));
      from = i + 1;
      if (!(bytes[offset] === 0xef && bytes[offset + 1] === 0xbf && bytes[offset + 2] === 0xbd)) break;
      offset += 3;
    }
    return { error: 'not UTF-8 text: a binary file?', offset };
  }
}

function lineOfByte(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < bytes.length; i++) if (bytes[i] === 10) line++;
  return line;
}

async function readStream(stream: Readable, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += b.length;
    if (total > maxBytes) {
      stream.destroy();
      throw Object.assign(new Error(`more than ${mib(maxBytes)}; the limit is ${mib(maxBytes)}`), { code: 'ETOOBIG' });
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** Regular files under a directory with a manifest extension, sorted, skipping dot entries and node_modules. */
async function walk(dir: string, seen: Set<string>, problems: InputProblem[]): Promise<string[]> {
  let real: string;
  try {
    real = await realpath(dir);
  } catch (err) {
    problems.push({ file: dir, message: reason(err) });
    return [];
  }
  if (seen.has(real)) return []; // a symlink loop, or the same directory named twice
  seen.add(real);
  const entries: { name: string; isDir: boolean }[] = [];
  try {
    for await (const e of await opendir(dir)) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        try {
          const s = await stat(join(dir, e.name));
          isDir = s.isDirectory();
          isFile = s.isFile();
        } catch {
          continue; // a dangling link
        }
      }
      if (isDir || (isFile && MANIFEST_EXTENSIONS.includes(extname(e.name).toLowerCase()))) entries.push({ name: e.name, isDir });
    }
  } catch (err) {
    problems.push({ file: dir, message: reason(err) });
    return [];
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: string[] = [];
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDir) out.push(...(await walk(path, seen, problems)));
    else out.push(path);
  }
  return out;
}

/** Forward slashes, so annotations and golden files read the same on every platform. */
const display = (p: string) => p.split('\\').join('/');

export async function loadInputs(paths: string[], opts: LoadOptions = {}): Promise<LoadResult> {
  const maxBytes = opts.maxBytes ?? MAX_INPUT_BYTES;
  const result: LoadResult = { objects: [], problems: [], files: 0, documents: 0 };
  const seen = new Set<string>();

  const take = (file: string, bytes: Uint8Array) => {
    result.files++;
    const decoded = decode(bytes);
    if ('error' in decoded) {
      result.problems.push({ file, line: lineOfByte(bytes, decoded.offset), message: decoded.error });
      return;
    }
    const parsed = parseManifests(file, decoded.text);
    result.objects.push(...parsed.objects);
    result.problems.push(...parsed.problems);
    result.documents += parsed.documents;
  };

  const readFiles = new Set<string>();
  const readOne = async (path: string) => {
    const file = display(path);
    try {
      const s = await stat(path);
      const real = await realpath(path);
      if (readFiles.has(real)) return; // named twice, or found again through a link
      readFiles.add(real);
      if (!s.isFile()) {
        result.problems.push({ file, message: 'not a regular file (a FIFO, socket or device?); pipe it to stdin and pass "-" instead' });
        return;
      }
      if (s.size > maxBytes) {
        result.problems.push({ file, message: `${mib(s.size)}: larger than the ${mib(maxBytes)} limit` });
        return;
      }
      take(file, await readFile(path));
    } catch (err) {
      result.problems.push({ file, message: reason(err) });
    }
  };

  let stdinRead = false;
  for (const path of paths) {
    if (path === '-') {
      if (stdinRead) continue;
      stdinRead = true;
      if (!opts.stdin) {
        result.problems.push({ file: STDIN_NAME, message: 'stdin is not available' });
        continue;
      }
      try {
        take(STDIN_NAME, await readStream(opts.stdin, maxBytes));
      } catch (err) {
        result.problems.push({ file: STDIN_NAME, message: reason(err) });
      }
      continue;
    }
    let s;
    try {
      s = await stat(path);
    } catch (err) {
      result.problems.push({ file: display(path), message: reason(err) });
      continue;
    }
    if (s.isDirectory()) {
      const before = result.problems.length;
      const again = seen.has(await realpath(path).catch(() => path));
      const files = await walk(path, seen, result.problems);
      if (files.length === 0 && result.problems.length === before && !again)
        result.problems.push({ file: display(path), message: `no ${MANIFEST_EXTENSIONS.join(', ')} files in this directory` });
      for (const f of files) await readOne(f);
    } else {
      await readOne(path);
    }
  }
  return result;
}
