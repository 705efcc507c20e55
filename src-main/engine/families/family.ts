/**
 * The model-family seam. A family (families/<family>/) is one module behind `ModelFamily`: its bundle fields and
 * checks (`manifest`, also read on the main thread to list bundles), its per-bundle resources, its device probe and
 * its sampler (the step loop and its progress snapshots). Everything else is plumbing the families call:
 * host.ts (sessions, the helper lane, graph checks), guidance-setup.ts, projection.ts, decode.ts, and runtime.ts,
 * which loads bundles, compiles constraints, batches samples and scores outputs for every family alike.
 */
import type { z } from 'zod';
import type { CommonManifest, ManifestChecks } from '../bundle-schema';
import type { CandidateScoring } from '../candidates';
import type { CompiledForEngine } from '../constraints-adapter';
import type { Provider } from '../devices';
import type { EngineHost } from '../host';
import type { Tokenizer } from '../tokenizer';
import type { DenoiserPrecision, ModelSummary, StepProgress } from '../types';
import type { SamplerSettings } from '../../constraints/set';

/** A family's manifest: the common fields plus its `kind` and its own fields. */
export type FamilyManifestBase = CommonManifest & { kind: string };

/** The bundle side of a family: pure (no ONNX Runtime), so the main thread can list and verify bundles with it. */
export interface FamilyManifest<M extends FamilyManifestBase> {
  kind: M['kind'];
  /** The whole manifest's schema (commonManifestFields plus the family's). */
  schema: z.ZodType<M>;
  /** Cross-field checks (files the family references must be listed, ...), after the schema and the common checks. */
  check(m: M, c: ManifestChecks): void;
  /** Checks on the verified files that need the tokenizer's size (continuous: the embeddings' byte count). */
  verify?(dir: string, m: M, vocabSize: number): Promise<void>;
  /** Denoiser weights the bundle ships. */
  precisions(m: M): DenoiserPrecision[];
  /** The soft (classifier-guided) constraint kinds this bundle cannot steer, and the verdict's words for it. */
  unservedSoft?(m: M): { kinds: string[]; detail: string } | undefined;
  /** How this bundle serves the soft kinds it does serve, when that needs saying (the verdict's detail). */
  softDetail?(m: M): Record<string, string> | undefined;
  /** Whether an attribute also holds the record segment to its value (the compiler's CompileModel.attributeRecord). */
  attributeRecord?(m: M): boolean;
  /** What `dlm-studio models` and the UI show of the family's own sampler settings. */
  summary?(m: M): Partial<Pick<ModelSummary, 'samplerDefaults' | 'continuousDefaults' | 'int8GuidedRuns' | 'exactTopK'>>;
}

/** A verified bundle with its tokenizer (family resources come from `ModelFamily.open`). */
export interface LoadedBundle<M extends FamilyManifestBase = FamilyManifestBase> {
  dir: string;
  manifest: M;
  /** sha256 over the manifest's file list. */
  hash: string;
  tokenizer: Tokenizer;
  vocabSize: number;
}

/** What the plumbing hands a family's `prepare`. */
export interface RunSetup<M extends FamilyManifestBase, S> {
  host: EngineHost;
  bundle: LoadedBundle<M>;
  /** What `open` returned for this bundle. */
  state: S;
  provider: Provider;
  sampler: SamplerSettings;
  /** Whether the set is classifier-guided (set.ts isGuidedRun: an enabled guided kind of weight > 0, guidance on). */
  guided: boolean;
  /** Things the run cannot honour but does not fail on. */
  warnings: string[];
  /** What the run chose for itself that a person may want to know (e.g. the text length it held for a record). */
  notes: string[];
  /**
   * Whether a family that can reuse denoiser outputs across steps does so (the masked family: logits while no token
   * changed). false only for comparisons (EngineOptions.logitsCache, DLM_MASKED_CACHE=0): the same tokens, more calls.
   */
  logitsCache: boolean;
}

/** A family's snapshot after a step: `runtime` stamps the time and the batch. */
export type ProgressSnapshot = Omit<StepProgress, 'elapsedMs' | 'at' | 'batchStart'>;

export interface BatchJob {
  /** Per-sample stream seeds (seed_j) of this batch. */
  seeds: number[];
  progress(p: ProgressSnapshot): void;
  /** Checked before every step. */
  cancelled(): boolean;
}

export interface BatchResult {
  /** [B, N] token ids, or null when cancelled. */
  tokens: Int32Array | null;
  /** Milliseconds per step. */
  stepMs: number[];
  /** Denoiser calls, when the family counts them. */
  calls?: number;
  /** Milliseconds spent in those calls, when the family counts them. */
  denoiserMs?: number;
  /** Milliseconds spent in guidance graph calls, when the family counts them. */
  guideMs?: number;
  /**
   * Guided runs with candidates: per sample, how well the finished canvas meets the guided constraints by the
   * bundle's own classifiers (their weighted log p; higher is better). The runtime keeps each output's best candidate.
   */
  scores?: Float32Array;
}

/** A run's load phase is done (sessions, precision); `plan` does what needs the compiled constraints. */
export interface FamilyRun {
  precision: DenoiserPrecision;
  /** held: per canvas position, the held token or -1. */
  plan(compiled: CompiledForEngine, held: Int32Array): Promise<{
    sample(job: BatchJob): Promise<BatchResult>;
    /**
     * What the batches' `scores` measure (absent: the guidance classifiers'): `by` the classifiers, or by the model's
     * own check of a continuous run that neither guides nor pins (sampler.ts SelfScoreConfig), or `read-back`: how
     * well a masked denoiser reads the held record back from a data-to-text candidate's text (masked/sampler.ts
     * readBackLogp). `acceptStrength`: set
     * when they are the classifiers' weighted log p with the run's guidance strength in each weight;
     * `sampler.accept_at` compares score / acceptStrength (the bundle's weights at strength 1).
     */
    scoring?: { by: CandidateScoring; acceptStrength?: number };
  }>;
}

export interface ModelFamily<M extends FamilyManifestBase = FamilyManifestBase, S = unknown> {
  manifest: FamilyManifest<M>;
  /** Resources kept while the bundle is loaded (continuous: embeddings and the rounding graphs). */
  open(bundle: LoadedBundle<M>): Promise<S>;
  /** One forward pass of the bundle's denoiser on a provider; throws when the provider cannot run it. */
  probe(host: EngineHost, bundle: LoadedBundle<M>, provider: Provider): Promise<void>;
  /** Sessions and precision for a run. */
  prepare(run: RunSetup<M, S>): Promise<FamilyRun>;
}
