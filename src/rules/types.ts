/**
 * The shape every rule speaks. A rule is a pure function from (object, context) to findings;
 * the HTTP handlers, the mutation and the CLI only adapt these findings to their medium.
 */

export type Severity = 'error' | 'warning';

export interface Finding {
  /** Stable rule id, e.g. "rec-db-suffix". Used for metrics, configuration and logs. */
  rule: string;
  /** Field path in the Kubernetes form, e.g. "spec.servers[0].hosts[1]". */
  path: string;
  /** The offending value as written by the user (undefined when the field is missing). */
  value: unknown;
  severity: Severity;
  /** The full field-error sentence, e.g. `spec.x: Invalid value: "y": why; use "z"`. */
  message: string;
  /** What to write instead, when there is one answer. */
  fix?: string;
  /**
   * A warning about the check itself (skipped, switched off), not about the object:
   * enforcement `deny` never turns it into an error; `off` still drops it.
   */
  notice?: boolean;
}

/** A Kubernetes object as the rules see it: untrusted JSON. */
export interface KubeObject {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: {
    name?: unknown;
    namespace?: unknown;
    annotations?: unknown;
    [k: string]: unknown;
  };
  spec?: unknown;
  [k: string]: unknown;
}

/** Group/version/kind of the object, as the API server names it in an AdmissionReview. */
export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}
