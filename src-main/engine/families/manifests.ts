/**
 * The bundle side of every model family, by manifest kind (pure: the main thread lists and verifies bundles with
 * it; the samplers are in families/index.ts, loaded by the engine worker).
 */
import { continuousManifest, type ContinuousManifest } from './continuous/manifest';
import type { FamilyManifest, FamilyManifestBase } from './family';
import { maskedManifest, type MaskedManifest } from './masked/manifest';

/** Every manifest the engine reads, one member per family. */
export type Manifest = ContinuousManifest | MaskedManifest;

export const FAMILY_MANIFESTS: FamilyManifest<FamilyManifestBase>[] = [
  continuousManifest as unknown as FamilyManifest<FamilyManifestBase>,
  maskedManifest as unknown as FamilyManifest<FamilyManifestBase>,
];

export const FAMILY_KINDS = FAMILY_MANIFESTS.map((f) => f.kind);

export function familyManifest(kind: string): FamilyManifest<FamilyManifestBase> | undefined {
  return FAMILY_MANIFESTS.find((f) => f.kind === kind);
}

/** What the constraint compiler is told of a bundle's family (its CompileModel fields of the same names). */
export function familyCompileHints(m: FamilyManifestBase): {
  unservedSoft?: { kinds: string[]; detail: string };
  softDetail?: Record<string, string>;
  attributeRecord?: boolean;
} {
  const f = familyManifest(m.kind);
  return { unservedSoft: f?.unservedSoft?.(m), softDetail: f?.softDetail?.(m), attributeRecord: f?.attributeRecord?.(m) };
}
