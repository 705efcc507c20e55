/**
 * Tiny ONNX graphs built in memory (a minimal protobuf writer for the few ModelProto fields used), so the
 * nearest-embedding search runs as one MLAS matmul + ArgMin instead of a JavaScript loop over the vocabulary.
 */

export class Writer {
  private parts: Uint8Array[] = [];
  private len = 0;
  private push(b: Uint8Array): void {
    this.parts.push(b);
    this.len += b.length;
  }
  varint(v: number | bigint): this {
    let n = BigInt.asUintN(64, BigInt(v));
    const out: number[] = [];
    do {
      let byte = Number(n & 0x7fn);
      n >>= 7n;
      if (n > 0n) byte |= 0x80;
      out.push(byte);
    } while (n > 0n);
    this.push(Uint8Array.from(out));
    return this;
  }
  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }
  int(field: number, v: number | bigint): this {
    return this.tag(field, 0).varint(v);
  }
  bytes(field: number, b: Uint8Array): this {
    this.tag(field, 2).varint(b.length);
    this.push(b);
    return this;
  }
  str(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  msg(field: number, w: Writer): this {
    return this.bytes(field, w.finish());
  }
  float(field: number, v: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
    return this;
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.len);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

export const FLOAT = 1;
export const INT64 = 7;

export function tensor(name: string, dims: number[], data: Float32Array | BigInt64Array, type: number): Writer {
  const w = new Writer();
  for (const d of dims) w.int(1, d);
  w.int(2, type);
  w.str(8, name);
  w.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return w;
}

export function valueInfo(name: string, type: number, dims: (number | string)[]): Writer {
  const shape = new Writer();
  for (const d of dims) shape.msg(1, typeof d === 'number' ? new Writer().int(1, d) : new Writer().str(2, d));
  const tt = new Writer().int(1, type).msg(2, shape);
  return new Writer().str(1, name).msg(2, new Writer().msg(1, tt));
}

export interface Attr { name: string; i?: number; ints?: number[] }

export function node(op: string, inputs: string[], outputs: string[], attrs: Attr[] = []): Writer {
  const w = new Writer();
  for (const i of inputs) w.str(1, i);
  for (const o of outputs) w.str(2, o);
  w.str(3, `${op}_${outputs[0]}`);
  w.str(4, op);
  for (const a of attrs) {
    const aw = new Writer().str(1, a.name);
    if (a.ints) {
      aw.int(20, 7);
      for (const v of a.ints) aw.int(8, v);
    } else aw.int(20, 2).int(3, a.i ?? 0);
    w.msg(5, aw);
  }
  return w;
}

export function model(nodes: Writer[], inits: Writer[], inputs: Writer[], outputs: Writer[]): Uint8Array {
  const g = new Writer();
  for (const n of nodes) g.msg(1, n);
  g.str(2, 'dlm_engine_round');
  for (const t of inits) g.msg(5, t);
  for (const i of inputs) g.msg(11, i);
  for (const o of outputs) g.msg(12, o);
  return new Writer().int(1, 8).str(2, 'dlm-studio').msg(7, g).msg(8, new Writer().str(1, '').int(2, 17)).finish();
}

function embeddingInits(E: Float32Array, V: number, d: number, forNearest: boolean): Writer[] {
  const ET = new Float32Array(d * V);
  const EN = new Float32Array(V);
  for (let v = 0; v < V; v++) {
    let s = 0;
    for (let j = 0; j < d; j++) {
      const e = E[v * d + j]!;
      ET[j * V + v] = e;
      s += e * e;
    }
    EN[v] = s;
  }
  // -2 E^T (exact: a power of two) lets one Gemm with bias EN give ||e||^2 - 2 x.e in a single pass
  if (forNearest) return [tensor('ETm2', [d, V], ET.map((v) => -2 * v), FLOAT), tensor('EN', [V], EN, FLOAT)];
  return [tensor('ET', [d, V], ET, FLOAT), tensor('EN', [V], EN, FLOAT), tensor('MINUS2', [], Float32Array.of(-2), FLOAT)];
}

/** X [M, d] -> IDX int64 [M]: argmin_v ||e_v||^2 - 2 x.e_v (nearest embedding, squared L2; first index on ties). */
export function nearestGraph(E: Float32Array, V: number, d: number): Uint8Array {
  return model(
    [
      node('Gemm', ['X', 'ETm2', 'EN'], ['D']),
      node('ArgMin', ['D'], ['IDX'], [{ name: 'axis', i: 1 }, { name: 'keepdims', i: 0 }]),
    ],
    embeddingInits(E, V, d, true),
    [valueInfo('X', FLOAT, ['M', d])],
    [valueInfo('IDX', INT64, ['M'])],
  );
}

/** X [M, d] -> S [M, V] = -||x - e_v||^2 (the per-position log-scores handed to hard projectors). */
export function scoresGraph(E: Float32Array, V: number, d: number): Uint8Array {
  return model(
    [
      node('MatMul', ['X', 'ET'], ['XE']),
      node('Mul', ['XE', 'MINUS2'], ['XE2']),
      node('Add', ['XE2', 'EN'], ['D']),
      node('Mul', ['X', 'X'], ['XSQ']),
      node('ReduceSum', ['XSQ', 'AXES'], ['XX'], [{ name: 'keepdims', i: 1 }]),
      node('Add', ['D', 'XX'], ['DIST']),
      node('Neg', ['DIST'], ['S']),
    ],
    [...embeddingInits(E, V, d, false), tensor('AXES', [1], BigInt64Array.of(1n), INT64)],
    [valueInfo('X', FLOAT, ['M', d])],
    [valueInfo('S', FLOAT, ['M', V])],
  );
}
