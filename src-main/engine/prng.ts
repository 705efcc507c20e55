/** Shared PRNG (docs/ARCHITECTURE.md, "Shared PRNG"): TypeScript and the Python reference draw the same noise. */

export class Mulberry32 {
  private state: number;
  private spare: number | null = null;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= (z + Math.imul(z ^ (z >>> 7), z | 61)) >>> 0;
    return (z ^ (z >>> 14)) >>> 0;
  }

  uniform(): number {
    return (this.next() + 0.5) / 4294967296;
  }

  /** Standard normal by Box-Muller in float64 (cos first, then sin). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    const u1 = this.uniform();
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  /** Fill with normals cast to float32. */
  fillNormal(out: Float32Array, offset = 0, count = out.length - offset): void {
    for (let i = 0; i < count; i++) out[offset + i] = this.normal();
  }
}

/** Seed of sample j's own stream: the j-th (0-based) output of mulberry32(seed). */
export function sampleSeeds(seed: number, count: number, first = 0): number[] {
  const g = new Mulberry32(seed);
  for (let j = 0; j < first; j++) g.next();
  const out: number[] = [];
  for (let j = 0; j < count; j++) out.push(g.next());
  return out;
}

/**
 * Uniforms number start .. start+count-1 of the stream of mulberry32(seed), computed directly (the state after n
 * calls is seed + n * 0x6D2B79F5), as training/dlm_train/prng.py `uniforms` does: (output + 0.5) / 2^32.
 */
export function uniformsAt(seed: number, start: number, count: number, out = new Float64Array(count)): Float64Array {
  for (let i = 0; i < count; i++) {
    let z = (seed + Math.imul(start + i + 1, 0x6d2b79f5)) >>> 0;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= (z + Math.imul(z ^ (z >>> 7), z | 61)) >>> 0;
    out[i] = (((z ^ (z >>> 14)) >>> 0) + 0.5) / 4294967296;
  }
  return out;
}
