/**
 * Hard constraints on canvas segments, as the samplers use them: the compiler's SegmentProjector narrowed to what a
 * sampler calls, and the per-sample projection of every hard segment given per-position log-scores.
 */

/** Hard constraint on one canvas segment (the compiler's SegmentProjector, narrowed to what the samplers need). */
export interface Projector {
  start: number;
  length: number;
  project(logScores: Float32Array, fixed?: Int32Array): Int32Array;
}

/** 1 at every canvas position some projector covers. */
export function coveredPositions(projectors: Projector[], N: number): Uint8Array {
  const covered = new Uint8Array(N);
  for (const p of projectors) for (let i = 0; i < p.length; i++) covered[p.start + i] = 1;
  return covered;
}

/** The held tokens inside a projector's segment (-1 = free), or undefined when it holds none. */
export function fixedOf(p: Projector, held: Int32Array | undefined): Int32Array | undefined {
  let fixed: Int32Array | undefined;
  for (let i = 0; i < p.length; i++) {
    const h = held?.[p.start + i] ?? -1;
    if (h >= 0) (fixed ??= new Int32Array(p.length).fill(-1))[i] = h;
  }
  return fixed;
}

/**
 * Project every hard segment of one sample: `scoresOf(p)` gives the segment's log-scores [length, V]; the chosen
 * tokens are written into `out` at `offset + p.start`.
 */
export async function projectSegments(
  projectors: Projector[], held: Int32Array | undefined, scoresOf: (p: Projector) => Promise<Float32Array>, out: Int32Array, offset: number,
): Promise<void> {
  for (const p of projectors) {
    const toks = p.project(await scoresOf(p), fixedOf(p, held));
    for (let i = 0; i < p.length; i++) out[offset + p.start + i] = toks[i]!;
  }
}
