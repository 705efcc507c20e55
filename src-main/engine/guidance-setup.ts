/**
 * Classifier guidance for a run: from the compiled soft targets and the bundle's gradient graphs (per-control or
 * joint) to the GuidanceConfig a sampler applies after its steps, with the guidance step split over the two cpu
 * lanes when the helper thread is there. Families whose samplers move x in embedding space call this.
 */
import { join } from 'node:path';
import type * as ort from 'onnxruntime-node';
import type { ClassifierEntry, CommonManifest } from './bundle-schema';
import type { Provider } from './devices';
import {
  buildTargets, chooseJointGraph, type ClassifierRunner, DEFAULT_LAMBDA, type GuidanceConfig, type GuidanceTerm, guideStep,
  type JointRunner, type JointTargets, jointTargets, jointTermFromTargets, makeTerm, noGraphOfItsOwn, type SoftTarget,
} from './guidance';
import type { EngineHost } from './host';
import type { SamplerSettings } from '../constraints/set';

export interface GuidanceSetup {
  host: EngineHost;
  dir: string;
  manifest: CommonManifest;
  soft: SoftTarget[];
  settings: SamplerSettings['guidance'];
  provider: Provider;
  /** Two cpu lanes: the guidance step is split between this thread and the helper thread. */
  lanes: boolean;
  /** Canvas length and the dimension of x. */
  N: number;
  d: number;
  /** Constraints the bundle cannot guide are named here. */
  warnings: string[];
  /** The bundle's guidance weight per control, measured on dev (manifest guidance_defaults.weights; absent: 1). */
  weights?: Partial<Record<string, number>>;
}

async function classifierRunner(host: EngineHost, dir: string, entry: ClassifierEntry, provider: Provider, remote: boolean): Promise<ClassifierRunner> {
  const sessions = new Map<number, ort.InferenceSession>();
  for (const b of entry.batch_sizes) sessions.set(b, await host.auxSession(dir, entry.files[String(b)]!, provider, true));
  const runner: ClassifierRunner = { entry, sessions };
  // the helper thread runs on cpu (accelerated providers run one graph at a time anyway)
  if (remote && provider === 'cpu' && host.auxWorker()) {
    runner.remote = (bs, feeds) => host.auxCall(join(dir, entry.files[String(bs)]!), 'cpu', feeds);
  }
  return runner;
}

async function jointRunner(host: EngineHost, dir: string, m: CommonManifest, files: Record<string, string>, provider: Provider): Promise<JointRunner> {
  const j = m.joint_guidance!;
  const sessions = new Map<number, ort.InferenceSession>();
  for (const b of j.batch_sizes) sessions.set(b, await host.auxSession(dir, files[String(b)]!, provider, true));
  const entries = new Map(m.classifiers.filter((c) => j.controls.includes(c.control)).map((c) => [c.control as string, c]));
  return { controls: j.controls, entries, sessions };
}

/**
 * A guidance step split over the two cpu lanes: the helper thread runs the whole K-iteration step on the first half
 * of the batch while this thread runs it on the second (one hand-over per denoising step, not per iteration).
 */
function laneGuideStep(host: EngineHost, cfg: GuidanceConfig, files: Record<string, string>, targets: JointTargets): NonNullable<GuidanceConfig['run']> {
  const local: GuidanceConfig = { ...cfg, run: undefined };
  return async (x, mu, sigma, tTrain, B, N, d, heldPos) => {
    const half = B > 1 ? Math.ceil(B / 2) : 0;
    const size = half * N * d;
    const remote = half ? host.auxSend({
      kind: 'guide', files, targets, x: x.slice(0, size), mu: mu.slice(0, size), sigma, tTrain, B: half, N, d, heldPos,
      iterations: cfg.iterations, stepSize: cfg.stepSize, lambda: cfg.lambda,
    }) : null;
    const mine = guideStep(x.subarray(size), mu.subarray(size), sigma, tTrain, B - half, N, d, heldPos, local);
    const [r] = await Promise.all([remote, mine]);
    if (r) x.set(r.x!.data, 0);
  };
}

/** A control's guidance weight: the constraint's weight x the bundle's measured weight for the control x strength. */
export function controlWeight(soft: Pick<SoftTarget, 'weight' | 'kind'>, weights: GuidanceSetup['weights'], strength: number): number {
  return (soft.weight ?? 1) * (weights?.[soft.kind] ?? 1) * strength;
}

/** Guidance terms from the soft targets the bundle has classifiers for; null when nothing is guided. */
export async function buildGuidance(s: GuidanceSetup): Promise<GuidanceConfig | null> {
  const { host, dir, manifest: m, settings: gs, provider, N, d, warnings } = s;
  if (!gs.enabled || gs.iterations <= 0 || gs.strength <= 0 || !s.soft.length) return null;
  const terms: GuidanceTerm[] = [];
  const lambdas: number[] = [];
  let laneGuide: { files: Record<string, string>; targets: JointTargets } | null = null;
  const guided = s.soft.filter((soft) => {
    if (m.classifiers.some((c) => c.control === soft.kind)) return true;
    warnings.push(`no ${soft.kind} classifier in bundle ${m.id}: constraint ${soft.index ?? ''} is evaluated but not guided`.replace('  ', ' '));
    return false;
  });
  for (const soft of guided) {
    const entry = m.classifiers.find((c) => c.control === soft.kind)!;
    lambdas.push(entry.lambda ?? DEFAULT_LAMBDA[soft.kind] ?? 0.01);
  }
  const joint = m.joint_guidance;
  if (joint && process.env.DLM_GUIDANCE_JOINT !== '0' && guided.length && guided.every((soft) => joint.controls.includes(soft.kind))) {
    // one trunk pass for all controls
    const weighted = guided.map((soft) => ({ soft, weight: controlWeight(soft, s.weights, gs.strength) }));
    const { files } = chooseJointGraph(joint, weighted);
    const runner = await jointRunner(host, dir, m, files, provider);
    const seg = m.canvas.segments.find((x) => x.name === joint.segment)!;
    const targets = jointTargets(runner, weighted, seg.length);
    terms.push(jointTermFromTargets(runner.sessions, targets, N, d, guided.map((soft) => soft.kind).join('+')));
    if (s.lanes) laneGuide = { files: Object.fromEntries(Object.entries(files).map(([bs, f]) => [bs, join(dir, f)])), targets };
  } else {
    for (const [i, soft] of guided.entries()) {
      const entry = m.classifiers.find((c) => c.control === soft.kind)!;
      if (!entry.batch_sizes.length) throw noGraphOfItsOwn(m.id, soft.kind);
      // with several classifiers, every other one runs on the helper thread, in parallel
      const runner = await classifierRunner(host, dir, entry, provider, guided.length > 1 && i % 2 === 0);
      const seg = m.canvas.segments.find((x) => x.name === entry.segment)!;
      buildTargets(entry, soft, seg.length, runner.sessions.values().next().value);
      terms.push(makeTerm(runner, soft, controlWeight(soft, s.weights, gs.strength), seg.length, N, d));
    }
  }
  if (!terms.length) return null;
  const guidance: GuidanceConfig = {
    terms,
    iterations: gs.iterations,
    stepSize: gs.stepSize,
    // the strongest anchor among the active controls (Diffusion-LM's composition used 0.01)
    lambda: gs.fluencyWeight ?? Math.max(...lambdas),
    offLastSteps: gs.offLastSteps,
  };
  if (laneGuide) guidance.run = laneGuideStep(host, guidance, laneGuide.files, laneGuide.targets);
  return guidance;
}
