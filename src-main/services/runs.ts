/**
 * Run manager: runs execute one at a time, in order (a FIFO queue). Each run is written to the store with
 * its full recipe before it starts; outputs are committed one by one as the engine yields them; the run is
 * closed as completed, cancelled or failed with the engine's timings.
 */
import type { Engine, RunSummary } from '../engine/types';
import type { RunRecipe, RunStatus } from '../api/contract';
import { ApiError } from '../api/errors';
import type { EventHub } from '../api/dispatch';
import type { Store } from '../store';

export const MAX_QUEUED_RUNS = 16;

interface QueuedRun {
  runId: number;
  recipe: RunRecipe;
  controller: AbortController;
}

export class RunManager {
  private queue: QueuedRun[] = [];
  private active: QueuedRun | null = null;
  private idle: Promise<void> = Promise.resolve();
  private pumping = false;

  constructor(
    private readonly store: Store,
    private readonly events: EventHub,
    private readonly getEngine: () => Promise<Engine>,
  ) {}

  get activeRunId(): number | null {
    return this.active?.runId ?? null;
  }

  get queuedRunIds(): number[] {
    return this.queue.map((q) => q.runId);
  }

  /** Create the run row and queue it; returns immediately. */
  start(recipe: RunRecipe): { runId: number; status: RunStatus; queuePosition: number } {
    const pending = this.queue.length + (this.active ? 1 : 0);
    if (pending >= MAX_QUEUED_RUNS) {
      throw new ApiError('BUSY', `the run queue is full (${pending} runs waiting or running, at most ${MAX_QUEUED_RUNS}); cancel one or wait`);
    }
    const run = this.store.runs.create(recipe, 'queued');
    const item: QueuedRun = { runId: run.id, recipe, controller: new AbortController() };
    this.queue.push(item);
    const queuePosition = pending;
    this.events.emit('run.queued', { runId: run.id, queuePosition });
    this.pump();
    return { runId: run.id, status: 'queued', queuePosition };
  }

  /** Cancel a queued run (it never starts) or signal the running one to stop after its current step. */
  cancel(runId: number): { runId: number; status: RunStatus } {
    const idx = this.queue.findIndex((q) => q.runId === runId);
    if (idx >= 0) {
      this.queue.splice(idx, 1);
      this.store.runs.finish(runId, 'cancelled', null, null);
      this.events.emit('run.finished', { runId, status: 'cancelled', summary: null, error: null });
      return { runId, status: 'cancelled' };
    }
    if (this.active?.runId === runId) {
      this.active.controller.abort();
      return { runId, status: 'running' };
    }
    const run = this.store.runs.get(runId);
    if (!run) throw new ApiError('NOT_FOUND', `run ${runId} does not exist`, 'runId');
    return { runId, status: run.status };
  }

  isBusy(runId: number): boolean {
    return this.active?.runId === runId || this.queue.some((q) => q.runId === runId);
  }

  /** Resolves when the queue is empty and nothing runs. */
  async whenIdle(): Promise<void> {
    while (this.pumping) await this.idle;
  }

  /**
   * Cancel everything and wait for the active run to close (used on shutdown); an engine that does not stop
   * within `timeoutMs` is left behind and its run is marked failed, so quitting never hangs.
   */
  async shutdown(timeoutMs = 10_000): Promise<void> {
    for (const q of [...this.queue]) this.cancel(q.runId);
    const active = this.active;
    active?.controller.abort();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      this.whenIdle().then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (timedOut && active) {
      this.closed = true;
      try {
        this.store.runs.finish(active.runId, 'failed', null, `the engine did not stop within ${timeoutMs} ms of shutting down`);
      } catch {
        // store already closed
      }
    }
  }

  /** Set when shutdown gave up on the engine: late outputs and events of the abandoned run are dropped. */
  private closed = false;

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    this.idle = (async () => {
      try {
        while (this.queue.length > 0) {
          const next = this.queue.shift()!;
          this.active = next;
          try {
            await this.execute(next);
          } finally {
            this.active = null;
          }
        }
      } finally {
        this.pumping = false;
      }
    })();
  }

  private async execute(item: QueuedRun): Promise<void> {
    const { runId, recipe, controller } = item;
    const store = this.store;
    let summary: RunSummary | null = null;
    try {
      store.runs.markRunning(runId);
      this.events.emit('run.started', { runId });
      const engine = await this.getEngine();
      summary = await engine.generate(
        { model: recipe.model.id, device: recipe.device.requested, constraints: { ...recipe.constraintSet.body, sampler: recipe.sampler } },
        {
          signal: controller.signal,
          onProgress: (p) => {
            if (!this.closed) this.events.emit('run.progress', { runId, ...p });
          },
          onOutput: (o) => {
            if (this.closed) return;
            store.runs.addOutput(runId, o);
            this.events.emit('run.output', { runId, output: o });
          },
        },
      );
      if (this.closed) return;
      const updated: RunRecipe = {
        ...recipe,
        model: { ...recipe.model, id: summary.model.id || recipe.model.id, version: summary.model.version ?? recipe.model.version, hash: summary.model.hash ?? recipe.model.hash },
        device: { requested: recipe.device.requested, active: summary.device.active, precision: summary.device.precision ?? null },
      };
      store.runs.updateRecipe(runId, updated);
      // the engine's verdict stands: a cancel that arrives after the last sample leaves a completed run
      const status = summary.status;
      store.runs.finish(runId, status, summary.timings, summary.error ?? null);
      this.events.emit('run.finished', { runId, status, summary, error: summary.error ?? null });
    } catch (err) {
      if (this.closed) return;
      const cancelled = controller.signal.aborted;
      const message = err instanceof Error ? err.message : String(err);
      const status = cancelled ? 'cancelled' : 'failed';
      try {
        store.runs.finish(runId, status, summary?.timings ?? null, cancelled ? null : message);
      } catch {
        // the store may be closed during shutdown
      }
      this.events.emit('run.finished', { runId, status, summary, error: cancelled ? null : message });
    }
  }
}
