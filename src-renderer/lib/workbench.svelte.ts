/**
 * The studio's working state that outlives a place: the constraint set being composed, the generation
 * settings, and the run being watched (its live canvases, outputs and progress). Places are re-mounted when
 * the user navigates, so this lives beside the shell's Studio, one per Studio.
 */
import { untrack } from 'svelte';
import { samplerSettings, type ConstraintKind, type ConstraintSet, type SamplerSettings } from '../../src-main/constraints/set';
import type {
  CompileReport,
  DevicePreference,
  DeviceReport,
  GeneratedOutput,
  RunRecipe,
  RunStatus,
  StudioEvents,
  ValidationResult,
} from '../../src-main/api/contract';
import { describeError } from './api';
import { useStudio, type Studio } from './studio.svelte';
import { blockOf, bodyOf, changedPositions, clone, defaultConstraint, recordPiecesOf, type Block, wordsOf } from './blocks';
import { committedPieces, completeMasked, familyOf, fitSampler, maskedRecordPiecesOf, maskedWordsOf, samplerForRun, startSampler, type Family, type SamplerStash } from './family';

export interface LiveSample {
  /** The output this canvas is (a candidate for). */
  index: number;
  /** A run with candidates: which candidate of its output (0-based). */
  candidate?: number;
  /** Unique within the batch (the view's key). */
  key: string;
  words: string[];
  changed: boolean[];
  record: string;
  recordPieces: string[];
  recordChanged: boolean[];
  /** Words changed at the latest step. */
  changes: number;
  /** Masked runs: canvas positions of this sample still masked (words equal to MASK_GLYPH show them). */
  masked?: number;
}

export interface WatchedRun {
  runId: number;
  status: RunStatus;
  setName: string | null;
  step: number;
  steps: number;
  elapsedMs: number;
  /** Samples (all batches) and how many have finished. */
  samples: number;
  batchStart: number;
  /** Candidates each output is chosen among (1: none). */
  candidates: number;
  live: LiveSample[];
  /** Words changed per step, summed over the batch (the "settling" curve). */
  churn: number[];
  /** The model's family (masked runs show their masks filling in). */
  family: Family | null;
  /** Masked runs: positions still masked after each step, summed over the batch. */
  maskedLeft: number[];
  outputs: GeneratedOutput[];
  events: number;
  error: string | null;
  warnings: string[];
  /** What the run chose for itself (e.g. the text length it held for a record). */
  notes: string[];
  device: DeviceReport | null;
  timings: { totalMs: number; perStepMs: number } | null;
}

export class Workbench {
  // ----- compose
  name = $state('');
  description = $state('');
  blocks = $state<Block[]>([]);
  sampler = $state<SamplerSettings>(startSampler(null));
  /**
   * Whether the step spacing was chosen (typed in Generate, or a recipe's): a spacing left at the bundle's default
   * takes its spacing for guided runs instead (samplerForRun).
   */
  spacingChosen = $state(false);
  /**
   * Whether the step count was chosen (typed in Generate, or a recipe's): steps left at the bundle's default take its
   * step count for guided runs instead (samplerForRun).
   */
  stepsChosen = $state(false);
  /**
   * Whether the candidates were chosen (typed in Generate, or a recipe's): otherwise a run takes the bundle's rule
   * (defaultCandidates: pinned_candidates, guided_candidates or free_candidates by what the set does, with guidance on or off).
   */
  candidatesChosen = $state(false);
  /**
   * Whether sampler.accept_at was chosen (typed in Generate, or a recipe's, absent there: draw all): otherwise a
   * classifier-guided run takes the bundle's sampler_defaults.accept_at (defaultAcceptAt).
   */
  acceptChosen = $state(false);
  /** The saved set the draft came from, and whether it changed since. */
  loaded = $state<{ id: number; name: string; version: number } | null>(null);
  /** The draft as last loaded or saved (name, description, constraints; sampler changes do not count). */
  private savedKey = $state('');
  readonly dirty = $derived(this.keyOf() !== this.savedKey);
  validation = $state<ValidationResult | null>(null);
  compile = $state<CompileReport | null>(null);
  checking = $state(false);
  checkError = $state<string | null>(null);
  /** The set as JSON text (Compose's source panel); while the user types in it, it drives the blocks. */
  jsonText = $state('');
  jsonError = $state<string | null>(null);
  jsonEditing = $state(false);
  jsonOpen = $state(true);

  // ----- generate
  device = $state<DevicePreference>('auto');
  deviceReport = $state<DeviceReport | null>(null);
  deviceError = $state<string | null>(null);
  run = $state<WatchedRun | null>(null);
  /** Output indices picked for export. */
  selected = $state<number[]>([]);
  /** The model the sampler settings were last fitted to (lib/family.ts fitSampler), and the other family's settings. */
  private samplerModelId: string | null = null;
  private samplerStash: SamplerStash = {};

  // ----- requests between places
  /** Runs Compare should show when it opens. */
  compareIds = $state<number[]>([]);
  /** Runs the Export place should preselect. */
  exportIds = $state<number[]>([]);
  /** The run Library should open. */
  libraryRun = $state<number | null>(null);

  /** An action that would replace a draft with unsaved edits, waiting for the user's go-ahead (DiscardDialog). */
  pendingReplace = $state<{ run: () => void } | null>(null);

  /** Run an action that replaces the draft, asking first when the draft has unsaved edits. */
  replaceDraft(action: () => void): void {
    if (this.dirty && this.blocks.length > 0) this.pendingReplace = { run: action };
    else action();
  }

  private checkTimer: ReturnType<typeof setTimeout> | null = null;
  private checkSeq = 0;

  constructor(readonly studio: Studio) {
    this.savedKey = this.keyOf();
    this.device = studio.settings?.defaultDevice ?? 'auto';
    this.deviceReport = studio.device;
    const c = studio.client;
    c.on('run.started', (e) => this.mine(e.runId) && (this.run!.status = 'running'));
    c.on('run.progress', (e) => this.onProgress(e));
    c.on('run.output', (e) => {
      if (!this.mine(e.runId)) return;
      const run = this.run!;
      run.events++;
      if (!run.outputs.some((o) => o.index === e.output.index)) run.outputs = [...run.outputs, e.output];
    });
    c.on('run.finished', (e) => this.onFinished(e));
    // the sampler settings follow the selected model's family and its sampler_defaults (masked bundles, and
    // continuous bundles that have them)
    $effect(() => {
      const model = this.studio.activeModel;
      untrack(() => this.fitSamplerTo(model));
    });
    void this.reattach();
  }

  private fitSamplerTo(model: Studio['activeModel']): void {
    if (!model || model.error || model.id === this.samplerModelId) return;
    const prev = this.studio.models.find((m) => m.id === this.samplerModelId && !m.error) ?? null;
    const fitted = fitSampler($state.snapshot(this.sampler) as SamplerSettings, prev, model, this.samplerStash);
    this.sampler = fitted.sampler;
    this.samplerStash = fitted.stash;
    this.samplerModelId = model.id;
    this.spacingChosen = false;
    this.stepsChosen = false;
  }

  /** The family of a run's model: its recipe's, else the installed bundle's. */
  private familyOfRecipe(recipe: RunRecipe): Family | null {
    return familyOf(recipe.model.kind ?? this.studio.models.find((m) => m.id === recipe.model.id)?.kind);
  }

  /** After a reload, follow a run that is still going (its progress resumes with the next step). */
  private async reattach(): Promise<void> {
    try {
      const [active] = await this.studio.client.call('runs.list', { status: 'running', limit: 1 });
      if (!active || this.run) return;
      const detail = await this.studio.client.call('runs.get', { runId: active.id });
      if (this.run) return;
      this.run = {
        runId: active.id,
        status: detail.run.status,
        setName: active.recipe.constraintSet.name,
        step: 0,
        steps: active.recipe.steps,
        elapsedMs: 0,
        samples: active.recipe.samples,
        batchStart: 0,
        candidates: active.recipe.sampler.candidates ?? 1,
        live: [],
        churn: [],
        family: this.familyOfRecipe(active.recipe),
        maskedLeft: [],
        outputs: detail.outputs,
        events: 0,
        error: null,
        warnings: [],
        notes: [],
        device: null,
        timings: null,
      };
    } catch {
      // nothing to follow
    }
  }

  private mine(runId: number): boolean {
    return this.run !== null && this.run.runId === runId;
  }

  private onProgress(e: StudioEvents['run.progress']): void {
    if (!this.mine(e.runId)) return;
    const run = this.run!;
    run.events++;
    run.status = 'running';
    // a new batch: another first output, or the steps starting over (a batch of one output's further candidates)
    if (e.batchStart !== run.batchStart || e.step < run.step) {
      run.batchStart = e.batchStart;
      run.live = [];
      run.churn = [];
      run.maskedLeft = [];
    }
    // progress that names masked positions comes from a masked run, whatever the recipe said
    if (e.masked) run.family = 'masked';
    const masked = run.family === 'masked';
    let churn = 0;
    run.live = e.canvases.map((cv, i) => {
      const prev = run.live[i];
      const words = masked ? maskedWordsOf(cv.text) : wordsOf(cv.text);
      const changed = masked ? committedPieces(prev?.words, words) : changedPositions(prev?.words, words);
      const recordPieces = masked ? maskedRecordPiecesOf(cv.record) : recordPiecesOf(cv.record);
      const recordChanged = masked ? committedPieces(prev?.recordPieces, recordPieces) : changedPositions(prev?.recordPieces, recordPieces);
      const changes = prev ? changed.filter(Boolean).length + recordChanged.filter(Boolean).length : 0;
      churn += changes;
      const index = e.outputOf?.[i] ?? e.batchStart + i;
      const candidate = e.candidateOf?.[i];
      const sample: LiveSample = { index, key: candidate === undefined ? String(index) : `${index}.${candidate}`, words, changed, record: cv.record, recordPieces, recordChanged, changes };
      if (candidate !== undefined) sample.candidate = candidate;
      if (e.masked) sample.masked = e.masked[i]?.length ?? 0;
      return sample;
    });
    if (e.step > 1) run.churn = [...run.churn, churn];
    if (e.masked) run.maskedLeft = [...run.maskedLeft, e.masked.reduce((a, m) => a + m.length, 0)];
    run.step = e.step;
    run.steps = e.steps;
    run.elapsedMs = e.elapsedMs;
  }

  private onFinished(e: StudioEvents['run.finished']): void {
    if (!this.mine(e.runId)) return;
    const run = this.run!;
    run.events++;
    run.status = e.status;
    run.error = e.error;
    // the text has settled: show the final canvases without the last step's highlights
    run.live = run.live.map((l) => ({ ...l, changed: l.changed.map(() => false), recordChanged: l.recordChanged.map(() => false), changes: 0 }));
    if (e.summary) {
      run.warnings = e.summary.warnings ?? [];
      run.notes = e.summary.notes ?? [];
      run.device = e.summary.device;
      run.timings = { totalMs: e.summary.timings.totalMs, perStepMs: e.summary.timings.perStepMs };
    }
    if (e.status === 'completed') this.studio.notify(`Run #${e.runId} finished: ${run.outputs.length} outputs`);
    else if (e.status === 'failed') this.studio.notify(`Run #${e.runId} failed: ${e.error ?? 'unknown error'}`, 'error');
  }

  // ----- compose actions

  private keyOf(): string {
    const { body } = this.current();
    return JSON.stringify([this.name.trim(), body.description ?? '', body.constraints]);
  }

  touch(): void {
    this.scheduleCheck();
  }

  addBlock(kind: ConstraintKind): void {
    this.blocks = [...this.blocks, blockOf(defaultConstraint(kind, this.studio.activeModel?.recordFields))];
    this.touch();
  }

  removeBlock(uid: number): void {
    this.blocks = this.blocks.filter((b) => b.uid !== uid);
    this.touch();
  }

  moveBlock(uid: number, delta: -1 | 1): void {
    const i = this.blocks.findIndex((b) => b.uid === uid);
    const j = i + delta;
    if (i < 0 || j < 0 || j >= this.blocks.length) return;
    const next = [...this.blocks];
    [next[i], next[j]] = [next[j]!, next[i]!];
    this.blocks = next;
    this.touch();
  }

  duplicateBlock(uid: number): void {
    const i = this.blocks.findIndex((b) => b.uid === uid);
    if (i < 0) return;
    const copy = blockOf(this.blocks[i]!.c);
    if (this.blocks[i]!.schemaText !== undefined) copy.schemaText = this.blocks[i]!.schemaText;
    this.blocks = [...this.blocks.slice(0, i + 1), copy, ...this.blocks.slice(i + 1)];
    this.touch();
  }

  current(): ReturnType<typeof bodyOf> {
    return bodyOf(this.blocks, { name: this.name, description: this.description, sampler: this.sampler });
  }

  /** Replace the draft with a set (from the library, a recipe, or a new empty set). */
  loadSet(body: ConstraintSet, from: { id: number; name: string; version: number } | null, name?: string): void {
    this.name = name ?? from?.name ?? body.name ?? '';
    this.description = body.description ?? '';
    this.blocks = body.constraints.map((c) => blockOf(c));
    this.setSampler(body.sampler);
    this.loaded = from;
    this.savedKey = this.keyOf();
    this.jsonEditing = false;
    this.validation = null;
    this.compile = null;
    this.syncJson();
    this.scheduleCheck(0);
  }

  newSet(): void {
    this.loadSet({ version: 1, constraints: [], sampler: startSampler(this.studio.activeModel) }, null, '');
  }

  /** Take sampler settings from a set or a preset; a masked model fills in the masked settings they leave out. */
  setSampler(settings: SamplerSettings): void {
    this.sampler = completeMasked(clone(settings), this.studio.activeModel);
    this.acceptChosen = settings.accept_at !== undefined;
  }

  /** Keep the JSON source in step with the blocks, unless the user is typing in it. */
  syncJson(): void {
    if (!this.jsonEditing) {
      this.jsonText = JSON.stringify(this.current().body, null, 2);
      this.jsonError = null;
    }
  }

  /** The user typed in the JSON source: when it parses, it replaces the blocks (validation names what is wrong). */
  applyJson(text: string): boolean {
    this.jsonText = text;
    this.jsonEditing = true;
    this.validation = null;
    this.compile = null;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      this.jsonError = `Not valid JSON: ${(err as Error).message}`;
      return false;
    }
    if (!value || typeof value !== 'object' || Array.isArray(value)) {
      this.jsonError = 'A constraint set is a JSON object: {"version": 1, "constraints": [...]}';
      return false;
    }
    this.jsonError = null;
    const v = value as { name?: unknown; description?: unknown; constraints?: unknown; sampler?: unknown };
    if (typeof v.name === 'string') this.name = v.name;
    this.description = typeof v.description === 'string' ? v.description : '';
    const list = Array.isArray(v.constraints) ? v.constraints : [];
    this.blocks = list.map((c) => blockOf((c && typeof c === 'object' ? { weight: 1, enabled: true, ...c } : c) as never));
    const sampler = samplerSettings.safeParse(v.sampler ?? {});
    if (sampler.success) this.sampler = sampler.data;
    this.scheduleCheck();
    return true;
  }

  /** Validate, then compile against the active model, a moment after the last edit. */
  scheduleCheck(delay = 350): void {
    if (this.checkTimer) clearTimeout(this.checkTimer);
    this.checkTimer = setTimeout(() => void this.check(), delay);
  }

  async check(): Promise<void> {
    const seq = ++this.checkSeq;
    const { body, parseErrors } = this.current();
    if (parseErrors.length) {
      this.validation = null;
      this.compile = null;
      return;
    }
    this.checking = true;
    try {
      const validation = await this.studio.client.call('constraintSets.validate', { body });
      if (seq !== this.checkSeq) return;
      this.validation = validation;
      if (!validation.valid) {
        this.compile = null;
        return;
      }
      const report = await this.studio.client.call('constraints.compile', { body, ...(this.studio.activeModelId ? { model: this.studio.activeModelId } : {}) });
      if (seq !== this.checkSeq) return;
      this.compile = report;
      this.checkError = null;
    } catch (err) {
      if (seq === this.checkSeq) this.checkError = describeError(err);
    } finally {
      if (seq === this.checkSeq) this.checking = false;
    }
  }

  async save(): Promise<boolean> {
    const { body, parseErrors } = this.current();
    if (parseErrors.length) {
      this.studio.notify(`Block ${parseErrors[0]!.index + 1}: ${parseErrors[0]!.message}`, 'error');
      return false;
    }
    const name = this.name.trim();
    if (!name) {
      this.studio.notify('Give the set a name before saving.', 'error');
      return false;
    }
    try {
      const key = this.keyOf();
      const saved = await this.studio.client.call('constraintSets.save', { name, body });
      this.loaded = { id: saved.id, name: saved.name, version: saved.version };
      this.savedKey = key;
      this.studio.notify(`Saved “${saved.name}” as version ${saved.version}`);
      return true;
    } catch (err) {
      this.studio.fail(err);
      return false;
    }
  }

  async openSet(id: number): Promise<void> {
    try {
      const set = await this.studio.client.call('constraintSets.get', { id });
      this.loadSet(set.body, { id: set.id, name: set.name, version: set.version });
    } catch (err) {
      this.studio.fail(err);
    }
  }

  // ----- generate actions

  async probe(preference: DevicePreference): Promise<void> {
    this.device = preference;
    try {
      this.deviceReport = await this.studio.client.call('devices.probe', { preference });
      this.deviceError = null;
    } catch (err) {
      this.deviceReport = null;
      this.deviceError = describeError(err);
    }
  }

  get running(): boolean {
    return this.run !== null && (this.run.status === 'queued' || this.run.status === 'running');
  }

  async start(): Promise<void> {
    const model = this.studio.activeModelId;
    if (!model) {
      this.studio.notify('No model is installed to run.', 'error');
      return;
    }
    const { body, parseErrors } = this.current();
    if (parseErrors.length) {
      this.studio.notify(`Block ${parseErrors[0]!.index + 1}: ${parseErrors[0]!.message}`, 'error');
      return;
    }
    try {
      // what the model's family reads: a continuous model's run carries no masked settings
      const sampler = samplerForRun($state.snapshot(this.sampler) as SamplerSettings, this.studio.activeModel, body.constraints, {
        spacing: this.spacingChosen, steps: this.stepsChosen, candidates: this.candidatesChosen, acceptAt: this.acceptChosen,
      });
      // a saved, unchanged set runs by id, so the run links back to it in the library
      const source = this.loaded && !this.dirty ? { constraintSetId: this.loaded.id } : { constraintSet: body };
      const r = await this.studio.client.call('runs.start', { model, device: this.device, sampler, ...source });
      this.selected = [];
      this.run = {
        runId: r.runId,
        status: r.status,
        setName: this.loaded?.name ?? (body.name || null),
        step: 0,
        steps: sampler.steps,
        elapsedMs: 0,
        samples: sampler.samples,
        batchStart: 0,
        candidates: sampler.candidates ?? 1,
        live: [],
        churn: [],
        family: familyOf(this.studio.activeModel?.kind),
        maskedLeft: [],
        outputs: [],
        events: 0,
        error: null,
        warnings: [],
        notes: [],
        device: null,
        timings: null,
      };
    } catch (err) {
      this.studio.fail(err);
    }
  }

  async cancel(): Promise<void> {
    if (!this.run) return;
    try {
      const r = await this.studio.client.call('runs.cancel', { runId: this.run.runId });
      if (this.run && this.run.runId === r.runId && (r.status === 'cancelled' || r.status === 'completed' || r.status === 'failed')) this.run.status = r.status;
    } catch (err) {
      this.studio.fail(err);
    }
  }

  /** Load a recipe (imported or from a past run) into Compose + Generate so it can be run again. */
  applyRecipe(recipe: RunRecipe): string[] {
    const notes: string[] = [];
    const cs = recipe.constraintSet;
    this.loadSet(cs.body, null, cs.name ?? cs.body.name ?? '');
    this.sampler = clone(recipe.sampler);
    this.sampler.candidates ??= 1; // a recipe from before the setting ran one sample per output
    this.spacingChosen = true; // the spacing the run ran with
    this.stepsChosen = true; // and its steps
    this.candidatesChosen = true;
    this.acceptChosen = true; // a recipe without accept_at drew every candidate
    if (cs.id !== null) notes.push(`the set was “${cs.name ?? '?'}” v${cs.version ?? '?'} in the studio that made it`);
    this.device = recipe.device.requested;
    const model = this.studio.models.find((m) => m.id === recipe.model.id && !m.error);
    if (model) {
      this.studio.activeModelId = model.id;
      if (recipe.model.hash && model.hash !== recipe.model.hash) notes.push(`model ${model.id} is installed but its weights differ (hash ${model.hash.slice(0, 12)}… vs ${recipe.model.hash.slice(0, 12)}…)`);
    } else {
      notes.push(`model ${recipe.model.id} is not installed here; ${this.studio.activeModelId ?? 'no model'} is selected instead`);
    }
    // the recipe's settings are the ones to run: do not refit them to the model just selected
    this.samplerModelId = this.studio.activeModelId;
    void this.probe(this.device);
    return notes;
  }
}

const benches = new WeakMap<Studio, Workbench>();
export function useWorkbench(): Workbench {
  const studio = useStudio();
  let w = benches.get(studio);
  if (!w) {
    // created in a root scope of its own, so its derived state outlives the place that first asked for it
    let created: Workbench | undefined;
    $effect.root(() => {
      created = new Workbench(studio);
    });
    w = created!;
    benches.set(studio, w);
  }
  return w;
}
