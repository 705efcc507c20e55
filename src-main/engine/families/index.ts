/** Every model family the engine worker can run, by manifest kind (their bundle sides: manifests.ts). */
import { continuousFamily } from './continuous/index';
import type { FamilyManifestBase, ModelFamily } from './family';
import { maskedFamily } from './masked/index';

const FAMILIES: ModelFamily<FamilyManifestBase, unknown>[] = [
  continuousFamily as unknown as ModelFamily<FamilyManifestBase, unknown>,
  maskedFamily as unknown as ModelFamily<FamilyManifestBase, unknown>,
];

export function familyOf(kind: string): ModelFamily<FamilyManifestBase, unknown> {
  const f = FAMILIES.find((x) => x.manifest.kind === kind);
  if (!f) throw new Error(`no model family for kind ${JSON.stringify(kind)}`);
  return f;
}
