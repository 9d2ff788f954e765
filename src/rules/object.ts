/** Safe reads from untrusted JSON: a rule never throws on a malformed object. */
import type { GroupVersionKind } from './types.ts';

export type Json = unknown;

export function isRecord(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function field(v: Json, key: string): Json {
  return isRecord(v) ? v[key] : undefined;
}

export function arrayOf(v: Json): Json[] {
  return Array.isArray(v) ? v : [];
}

export function stringOf(v: Json): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export type ObjectKind = 'RedisEnterpriseCluster' | 'Gateway' | 'VirtualService';

const OURS: Record<string, { kinds: ObjectKind[]; versions: string[] }> = {
  'app.redislabs.com': { kinds: ['RedisEnterpriseCluster'], versions: ['v1', 'v1alpha1'] },
  'networking.istio.io': { kinds: ['Gateway', 'VirtualService'], versions: ['v1', 'v1beta1', 'v1alpha3'] },
};

/** Which of our kinds this is, or undefined for anything we do not judge. */
export function classify(gvk: GroupVersionKind): ObjectKind | undefined {
  const group = OURS[gvk.group];
  if (!group || !group.versions.includes(gvk.version)) return undefined;
  return group.kinds.find((k) => k === gvk.kind);
}

/** "networking.istio.io/v1" + "Gateway" as a GroupVersionKind; undefined when malformed. */
export function gvkOf(obj: Json): GroupVersionKind | undefined {
  const apiVersion = stringOf(field(obj, 'apiVersion'));
  const kind = stringOf(field(obj, 'kind'));
  if (!apiVersion || !kind) return undefined;
  const slash = apiVersion.indexOf('/');
  return slash < 0
    ? { group: '', version: apiVersion, kind }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1), kind };
}
