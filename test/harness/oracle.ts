/**
 * Istio's own validation as a test oracle.
 *
 * startOracle() builds test/harness/istio-oracle (a Go program linked against istio.io/istio at
 * ISTIO_PIN, cached by ensureGoTools) and keeps one child process running. judge() streams objects to
 * it as JSON Lines and resolves with one verdict per object, in order. The child follows the same steps
 * as istiod's validating webhook (pkg/webhooks/validation/server, Webhook.validate): decode into
 * crd.IstioKind, look the kind up in collections.PilotGatewayAPI(), crd.ConvertObject(..., "cluster.local"),
 * schema.ValidateConfig, then the top-level field check.
 *
 * Not covered: the apiserver's CRD schema / CEL layer (defaulting, pruning, x-kubernetes-validations),
 * which runs before a real webhook sees the object.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ensureGoTools, harnessRoot } from './gobuild.ts';

export interface IstioVerdict {
  /** What istiod's webhook would answer. */
  allowed: boolean;
  /** Element strings of the validation multierror (no "configuration is invalid: " prefix). */
  errors: string[];
  /**
   * Element strings of the validation warnings. Reported even when the object is rejected; the real
   * webhook only returns warnings when it admits the object.
   */
  warnings: string[];
  /** The webhook's exact denial message (AdmissionResponse.result.message); null when allowed. */
  message?: string | null;
}

export interface Oracle {
  judge(objects: object[]): Promise<IstioVerdict[]>;
  close(): Promise<void>;
}

export const ISTIO_PIN = {
  module: 'istio.io/istio',
  version: 'v0.0.0-20260827124520-eed52ebb66ad',
  commit: 'eed52ebb66ad',
} as const;

export const ORACLE_MODULE_DIR = join(harnessRoot, 'istio-oracle');

interface WireResult {
  index: number;
  kind: string;
  namespace: string;
  name: string;
  allowed: boolean;
  errors: string[];
  warnings: string[];
  message: string | null;
  panic?: boolean;
}

/** Pipes of a child process are net.Sockets at runtime, which can be (un)referenced. */
interface Refable {
  ref?: () => void;
  unref?: () => void;
}

interface Pending {
  index: number;
  resolve: (r: WireResult) => void;
  reject: (e: Error) => void;
}

/** Environment for the child: nothing that istiod's feature flags (PILOT_*, ISTIO_*, …) could read. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG']) if (process.env[k] !== undefined) env[k] = process.env[k];
  return env;
}

const STDERR_TAIL_LINES = 40;
const WRITE_CHUNK = 512;

class IstioOracle implements Oracle {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #pending: Pending[] = [];
  #head = 0; // index of the first unanswered entry in #pending
  #nextIndex = 0;
  #dead: Error | undefined;
  #stderrTail: string[] = [];
  #exited: Promise<void>;
  #writeChain: Promise<void> = Promise.resolve();
  #closing = false;
  #stdinError: Error | undefined;

  constructor(bin: string) {
    this.#child = spawn(bin, ['-format', 'jsonl'], { env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    const debug = process.env.RIG_ORACLE_DEBUG === '1';
    this.#exited = new Promise((resolve) => {
      this.#child.on('exit', (code, signal) => {
        if (this.#closing && code === 0) this.#dead ??= new Error('istio-oracle is closed');
        this.#fail(
          `istio-oracle exited unexpectedly (code ${code}, signal ${signal})` +
            (this.#stdinError ? ` (stdin: ${this.#stdinError.message})` : '') +
            (this.#stderrTail.length ? `; stderr tail:\n${this.#stderrTail.join('\n')}` : ''),
        );
        resolve();
      });
    });
    this.#child.on('error', (err) => this.#fail(`istio-oracle process error: ${err.message}`));
    // EPIPE on stdin means the child is gone; wait briefly for 'exit' so the error names the exit status.
    this.#child.stdin.on('error', (err) => {
      this.#stdinError = err;
      setTimeout(() => this.#fail(`istio-oracle stdin: ${err.message}`), 2000).unref();
    });

    createInterface({ input: this.#child.stderr, crlfDelay: Infinity }).on('line', (line) => {
      this.#stderrTail.push(line);
      if (this.#stderrTail.length > STDERR_TAIL_LINES) this.#stderrTail.shift();
      if (debug) process.stderr.write(`[istio-oracle] ${line}\n`);
    });
    createInterface({ input: this.#child.stdout, crlfDelay: Infinity }).on('line', (line) => this.#onLine(line));
    this.#idle();
  }

  #onLine(line: string): void {
    if (!line.startsWith('{"index":')) {
      // Not a result (stray output from a library); keep it for diagnostics.
      this.#stderrTail.push(`(stdout) ${line}`);
      if (this.#stderrTail.length > STDERR_TAIL_LINES) this.#stderrTail.shift();
      return;
    }
    let r: WireResult;
    try {
      r = JSON.parse(line) as WireResult;
    } catch (err) {
      this.#fail(`istio-oracle wrote an unparsable result line: ${(err as Error).message}: ${line.slice(0, 200)}`);
      return;
    }
    const p = this.#pending[this.#head];
    if (!p) {
      this.#fail(`istio-oracle answered index ${r.index} that nobody asked for`);
      return;
    }
    if (p.index !== r.index) {
      this.#fail(`istio-oracle answered index ${r.index}, expected ${p.index}`);
      return;
    }
    this.#pending[this.#head] = undefined as unknown as Pending;
    this.#head++;
    if (this.#head > 4096 && this.#head * 2 > this.#pending.length) {
      this.#pending.splice(0, this.#head);
      this.#head = 0;
    }
    if (this.#head === this.#pending.length) this.#idle();
    p.resolve(r);
  }

  #fail(message: string): void {
    if (!this.#dead) this.#dead = new Error(message);
    const pending = this.#pending.splice(this.#head);
    this.#head = 0;
    this.#pending.length = 0;
    for (const p of pending) p.reject(this.#dead);
    if (this.#child.exitCode === null && this.#child.signalCode === null && this.#child.pid !== undefined) {
      this.#child.kill('SIGKILL');
    }
  }

  /** Let the test process exit while the child is idle, even if close() is forgotten. */
  #idle(): void {
    this.#child.unref();
    for (const s of [this.#child.stdin, this.#child.stdout, this.#child.stderr]) (s as unknown as Refable).unref?.();
  }

  #busy(): void {
    this.#child.ref();
    for (const s of [this.#child.stdin, this.#child.stdout, this.#child.stderr]) (s as unknown as Refable).ref?.();
  }

  async judge(objects: object[]): Promise<IstioVerdict[]> {
    if (this.#dead) throw this.#dead;
    if (objects.length === 0) return [];
    const lines: string[] = [];
    const answers: Promise<WireResult>[] = [];
    for (const o of objects) {
      const json = JSON.stringify(o);
      if (typeof json !== 'string' || !json.startsWith('{')) {
        throw new TypeError(`oracle.judge: every item must serialise to a JSON object, got ${String(json).slice(0, 80)}`);
      }
      lines.push(json);
    }
    this.#busy();
    for (let i = 0; i < lines.length; i++) {
      const index = this.#nextIndex++;
      answers.push(new Promise((resolve, reject) => this.#pending.push({ index, resolve, reject })));
    }
    // Serialise writes across concurrent judge() calls so indices stay in order, and honour backpressure.
    this.#writeChain = this.#writeChain.then(() => this.#write(lines)).catch((err: Error) => this.#fail(err.message));
    const results = await Promise.all(answers);
    return results.map((r) => ({ allowed: r.allowed, errors: r.errors, warnings: r.warnings, message: r.message }));
  }

  async #write(lines: string[]): Promise<void> {
    const stdin = this.#child.stdin;
    for (let i = 0; i < lines.length; i += WRITE_CHUNK) {
      if (this.#dead) return;
      const ok = stdin.write(lines.slice(i, i + WRITE_CHUNK).join('\n') + '\n');
      if (!ok) {
        await new Promise<void>((resolve) => {
          const done = () => {
            stdin.off('drain', done);
            this.#child.off('exit', done);
            resolve();
          };
          stdin.on('drain', done);
          this.#child.on('exit', done);
        });
      }
    }
  }

  async close(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#closing = true;
      this.#busy();
      await this.#writeChain;
      this.#child.stdin.end();
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
      await this.#exited;
      clearTimeout(timer);
    }
    if (!this.#dead) this.#dead = new Error('istio-oracle is closed');
  }
}

/** Builds (or reuses) the oracle binary and starts one long-lived child process. */
export async function startOracle(): Promise<Oracle> {
  const bins = await ensureGoTools(ORACLE_MODULE_DIR, [{ pkg: '.', out: 'istio-oracle' }]);
  return new IstioOracle(bins['istio-oracle']!);
}
