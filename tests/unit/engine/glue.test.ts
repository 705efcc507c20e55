/**
 * Pieces that glue onto the word before them (projection.ts glueRule / scoredProjector's `glue`): a guided continuous
 * run rounds its text left to right without writing "theKnown".
 */
import { describe, expect, it } from 'vitest';
import { glueRule, repeatRule, scoredProjector } from '../../../src-main/engine/projection';

const tokens = ['The', ' the', 'Known', '-', 'friendly', ' 5', '.', '<end>', 'é'];
const V = tokens.length;
const id = (t: string) => tokens.indexOf(t);

describe('which pieces glue onto the one before them', () => {
  it('a piece starting with a letter and no space continues; one ending in a letter or digit ends a word', () => {
    const g = glueRule(tokens);
    expect([...g.continues]).toEqual([1, 0, 1, 0, 1, 0, 0, 0, 1]);
    expect([...g.endsWord]).toEqual([1, 1, 1, 0, 1, 1, 0, 0, 1]);
  });

  it('rounding passes over a continuation after a word, keeps it after "-", and keeps a held one', () => {
    // position scores: each position prefers the listed piece, then ' 5'
    const prefer = (...best: string[]) => {
      const s = new Float32Array(best.length * V).fill(-10);
      best.forEach((t, i) => {
        s[i * V + id(t)] = 0;
        s[i * V + id(' 5')] = -1;
      });
      return s;
    };
    const add = new Float32Array(4 * V);
    const glued = scoredProjector(0, 4, add, V, glueRule(tokens));
    const plain = scoredProjector(0, 4, add, V);
    const scores = prefer(' the', 'Known', '-', 'friendly');
    expect([...plain.project(scores)].map((t) => tokens[t])).toEqual([' the', 'Known', '-', 'friendly']);
    expect([...glued.project(scores)].map((t) => tokens[t])).toEqual([' the', ' 5', '-', 'friendly']);
    // a held continuation stays, and the text-initial position may start with one
    expect([...glued.project(prefer('The', 'Known', '.', 'é'), Int32Array.from([-1, id('Known'), -1, -1]))].map((t) => tokens[t])).toEqual(['The', 'Known', '.', 'é']);
    // where only continuations are allowed (everything else barred), the rule gives way rather than leave a hole
    const onlyContinuations = new Float32Array(2 * V);
    tokens.forEach((t, v) => {
      if (!/^\p{L}/u.test(t)) onlyContinuations[V + v] = -Infinity;
    });
    expect([...scoredProjector(0, 2, onlyContinuations, V, glueRule(tokens)).project(prefer(' the', 'Known'))].map((t) => tokens[t])).toEqual([' the', 'Known']);
  });

  it('rounding passes over a token that writes the word before it again, and gives way where nothing else is left', () => {
    const toks = [' a', ' restaurant', 'restaurant', ' Café', ' Rouge', '.', ' Restaurant'];
    const W = toks.length;
    const at = (t: string) => toks.indexOf(t);
    const r = repeatRule(toks);
    // a word with and without its space, and in another case, is one word; a full stop is its own
    expect(r.word[at(' restaurant')]).toBe(r.word[at('restaurant')]);
    expect(r.word[at(' Restaurant')]).toBe(r.word[at(' restaurant')]);
    expect(r.word[at('.')]).toBeGreaterThanOrEqual(0);
    expect(r.word[at('.')]).not.toBe(r.word[at(' restaurant')]);
    // each position: the listed token first, the second one next
    const prefer = (...pairs: [string, string][]) => {
      const s = new Float32Array(pairs.length * W).fill(-10);
      pairs.forEach(([first, second], i) => {
        s[i * W + at(first)] = 0;
        s[i * W + at(second)] = -1;
      });
      return s;
    };
    const add = new Float32Array(4 * W);
    const scores = prefer([' a', '.'], [' restaurant', '.'], ['restaurant', ' Café'], [' Café', ' Rouge']);
    expect([...scoredProjector(0, 4, add, W).project(scores)].map((t) => toks[t])).toEqual([' a', ' restaurant', 'restaurant', ' Café']);
    expect([...scoredProjector(0, 4, add, W, undefined, r).project(scores)].map((t) => toks[t])).toEqual([' a', ' restaurant', ' Café', ' Rouge']);
    // a held token is kept even where it repeats
    expect([...scoredProjector(0, 4, add, W, undefined, r).project(scores, Int32Array.from([-1, -1, at(' Restaurant'), -1]))].map((t) => toks[t])).toEqual([' a', ' restaurant', ' Restaurant', ' Café']);
    // where every other token is barred, the rule gives way
    const onlyRestaurant = new Float32Array(2 * W).fill(-Infinity);
    onlyRestaurant[at(' restaurant')] = 0;
    onlyRestaurant[W + at(' restaurant')] = 0;
    expect([...scoredProjector(0, 2, onlyRestaurant, W, undefined, r).project(prefer([' restaurant', '.'], [' restaurant', '.']))].map((t) => toks[t])).toEqual([' restaurant', ' restaurant']);
  });
});
