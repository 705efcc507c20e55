import { describe, expect, it } from 'vitest';
import { ConstraintSetError, continuousSpacing, continuousSteps, defaultAcceptAt, defaultCandidates, exactTopKOf, guidanceAtSteps, isGuidedRun, maskedRecordTemperature, maskedTemperature, parseConstraintSet, setPinsCanvas } from '../../../src-main/constraints/set';
import { barringProjector } from '../../../src-main/engine/projection';

function refusal(value: unknown, source?: string): ConstraintSetError {
  try {
    parseConstraintSet(value, source);
  } catch (e) {
    if (e instanceof ConstraintSetError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('constraint-set file format', () => {
  it('fills defaults and keeps every kind from the issue', () => {
    const set = parseConstraintSet({
      version: 1,
      constraints: [
        { kind: 'pos', tags: ['DET', 'NOUN', '*'] },
        { kind: 'attribute', field: 'food', value: 'Italian', weight: 2 },
        { kind: 'length', tokens: 20 },
        { kind: 'sentiment', label: 'negative', note: 'grumpy' },
        { kind: 'spans', spans: [[0, 2, 'NP']] },
        { kind: 'record', value: { name: 'The Eagle' } },
        { kind: 'text', value: 'The Eagle is a pub.' },
        { kind: 'infill', template: 'The ___ is a pub.' },
        { kind: 'json-schema', schema: { type: 'object' } },
      ],
    });
    expect(set.constraints.map((c) => c.kind)).toEqual(['pos', 'attribute', 'length', 'sentiment', 'spans', 'record', 'text', 'infill', 'json-schema']);
    expect(set.constraints[1]!.weight).toBe(2);
    expect(set.constraints[0]!.enabled).toBe(true);
    expect(set.sampler.steps).toBe(200);
    expect(set.constraints[3]).toMatchObject({ label: 'negative', note: 'grumpy' });
  });

  it('refuses a sentiment label outside the three classes, naming the field', () => {
    const e = refusal({ version: 1, constraints: [{ kind: 'sentiment', label: 'ecstatic' }] });
    expect(e.issues[0]!.path).toBe('constraints[0].label');
  });

  it('names an unknown kind and the file it came from', () => {
    const e = refusal({ version: 1, constraints: [{ kind: 'pos', tags: ['NOUN'] }, { kind: 'rhyme' }] }, 'set.json');
    expect(e.message).toContain('set.json');
    expect(e.message).toContain('constraints[1].kind');
    expect(e.message).toContain('"rhyme"');
  });

  it('refuses unknown fields and wrong versions by name', () => {
    expect(refusal({ version: 1, constraints: [{ kind: 'length', tokens: 5, colour: 'red' }] }).message).toMatch(/colour/);
    expect(refusal({ version: 2, constraints: [] }).issues[0]!.path).toBe('version');
    expect(refusal({ version: 1, constraints: [{ kind: 'spans', spans: [[4, 2, 'NP']] }] }).message).toMatch(/end must be >= start/);
  });
});

describe('the masked family’s temperature rule', () => {
  it('a set pins the canvas with an enabled record, text or infill constraint, nothing else', () => {
    const { constraints } = parseConstraintSet({
      version: 1,
      constraints: [{ kind: 'json-schema', schema: { type: 'object' } }, { kind: 'words', include: ['pub'] }, { kind: 'sentiment', label: 'positive' }, { kind: 'record', value: { name: 'A' }, enabled: false }],
    });
    expect(setPinsCanvas([])).toBe(false);
    expect(setPinsCanvas(constraints)).toBe(false);
    for (const c of [{ kind: 'record', value: { name: 'A' } }, { kind: 'text', value: 'Hi.' }, { kind: 'infill', template: 'A ___ pub.' }]) {
      expect(setPinsCanvas(parseConstraintSet({ version: 1, constraints: [c] }).constraints), c.kind).toBe(true);
    }
  });

  it('the request’s temperature; else unpinned: temperature_unconditional when the bundle has one; else temperature', () => {
    const d = { temperature: 0, temperature_unconditional: 0.5 };
    expect(maskedTemperature(d, undefined, false)).toBe(0.5);
    expect(maskedTemperature(d, undefined, true)).toBe(0);
    expect(maskedTemperature(d, 0, false)).toBe(0);
    expect(maskedTemperature(d, 1.2, true)).toBe(1.2);
    expect(maskedTemperature({ temperature: 0.3 }, undefined, false)).toBe(0.3);
  });

  it('the record segment: record_temperature, else a given temperature, else in a free run the bundle\'s record default, else the run\'s', () => {
    const d = { temperature: 0.3, temperature_unconditional: 0.5, record_temperature_unconditional: 1 };
    expect(maskedRecordTemperature(d, {}, false, false)).toBe(1);
    expect(maskedRecordTemperature(d, {}, true, false)).toBe(0.3);
    // a guided run keeps the run's temperature for its record
    expect(maskedRecordTemperature(d, {}, false, true)).toBe(0.5);
    expect(maskedRecordTemperature(d, { temperature: 0.7 }, false, false)).toBe(0.7);
    expect(maskedRecordTemperature(d, { temperature: 0.7, record_temperature: 0 }, false, false)).toBe(0);
    expect(maskedRecordTemperature(d, { record_temperature: 2 }, true, true)).toBe(2);
    expect(maskedRecordTemperature({ temperature: 0.3, temperature_unconditional: 0.5 }, {}, false, false)).toBe(0.5);
    expect(parseConstraintSet({ version: 1, constraints: [], sampler: { record_temperature: 1.5 } }).sampler.record_temperature).toBe(1.5);
    expect(refusal({ version: 1, constraints: [], sampler: { record_temperature: -1 } }).message).toMatch(/record_temperature/);
  });
});

describe('candidates a run names none of (defaultCandidates)', () => {
  it('the bundle\'s pinned_candidates for a set that pins a record, a text or a template; else 1', () => {
    const m = { pinnedCandidates: 4 };
    expect(defaultCandidates(m, [{ kind: 'record' }])).toBe(4);
    expect(defaultCandidates(m, [{ kind: 'text' }, { kind: 'sentiment' }])).toBe(4);
    expect(defaultCandidates(m, [{ kind: 'infill' }])).toBe(4);
    expect(defaultCandidates(m, [{ kind: 'record', enabled: false }])).toBe(1);
    expect(defaultCandidates(m, [{ kind: 'sentiment' }, { kind: 'json-schema' }])).toBe(1);
    expect(defaultCandidates(m, [])).toBe(1);
    expect(defaultCandidates({}, [{ kind: 'record' }])).toBe(1);
  });

  it('the bundle\'s guided_candidates for a classifier-guided set (the larger where a set pins and is guided)', () => {
    const m = { pinnedCandidates: 8, guidedCandidates: 4 };
    expect(defaultCandidates(m, [{ kind: 'sentiment' }])).toBe(4);
    expect(defaultCandidates(m, [{ kind: 'spans', spans: [] } as { kind: string }, { kind: 'json-schema' }])).toBe(4);
    expect(defaultCandidates(m, [{ kind: 'record' }, { kind: 'sentiment' }])).toBe(8);
    expect(defaultCandidates({ pinnedCandidates: 2, guidedCandidates: 4 }, [{ kind: 'record' }, { kind: 'pos' }])).toBe(4);
    // not guided: guidance off, strength 0, the constraint disabled or weighted 0, or no soft constraint at all
    expect(defaultCandidates(m, [{ kind: 'sentiment' }], { enabled: false })).toBe(1);
    expect(defaultCandidates(m, [{ kind: 'sentiment' }], { strength: 0 })).toBe(1);
    expect(defaultCandidates(m, [{ kind: 'sentiment', enabled: false }])).toBe(1);
    expect(defaultCandidates(m, [{ kind: 'sentiment', weight: 0 }])).toBe(1);
    expect(defaultCandidates(m, [{ kind: 'json-schema' }])).toBe(1);
    expect(defaultCandidates({ pinnedCandidates: 8 }, [{ kind: 'sentiment' }])).toBe(1);
  });

  it('the bundle\'s free_candidates for a set that neither pins nor is guided, and only there', () => {
    const m = { pinnedCandidates: 8, guidedCandidates: 4, freeCandidates: 2 };
    expect(defaultCandidates(m, [])).toBe(2);
    expect(defaultCandidates(m, [{ kind: 'json-schema' }])).toBe(2);
    // guidance off turns a guided set into a free one
    expect(defaultCandidates(m, [{ kind: 'sentiment' }], { enabled: false })).toBe(2);
    expect(defaultCandidates(m, [{ kind: 'sentiment' }])).toBe(4);
    expect(defaultCandidates(m, [{ kind: 'record' }])).toBe(8);
    // it does not lift a pinned or guided run's smaller rule
    expect(defaultCandidates({ guidedCandidates: 1, freeCandidates: 3 }, [{ kind: 'sentiment' }])).toBe(1);
    expect(defaultCandidates({ freeCandidates: 3 }, [{ kind: 'text' }])).toBe(1);
  });

  it('the bundle\'s accept_at for a classifier-guided set, and only there', () => {
    expect(defaultAcceptAt({ acceptAt: 0.9 }, [{ kind: 'pos' }])).toBe(0.9);
    expect(defaultAcceptAt({ acceptAt: 0.9 }, [{ kind: 'record' }, { kind: 'sentiment' }])).toBe(0.9);
    expect(defaultAcceptAt({ acceptAt: 0.9 }, [{ kind: 'record' }])).toBeUndefined();
    expect(defaultAcceptAt({ acceptAt: 0.9 }, [])).toBeUndefined();
    expect(defaultAcceptAt({ acceptAt: 0.9 }, [{ kind: 'sentiment' }], { enabled: false })).toBeUndefined();
    expect(defaultAcceptAt({ acceptAt: 0.9 }, [{ kind: 'sentiment', weight: 0 }])).toBeUndefined();
    expect(defaultAcceptAt({}, [{ kind: 'sentiment' }])).toBeUndefined();
  });

  it('per kind: a run takes the largest level among its guided kinds, a length only where nothing else is guided', () => {
    const byKind = { spans: 0.5, attribute: 0.5 };
    expect(defaultAcceptAt({ acceptAt: 0.9, acceptAtByKind: byKind }, [{ kind: 'spans' }])).toBe(0.5);
    expect(defaultAcceptAt({ acceptAt: 0.9, acceptAtByKind: byKind }, [{ kind: 'attribute' }, { kind: 'spans' }])).toBe(0.5);
    // a kind without its own level takes accept_at, and the largest wins
    expect(defaultAcceptAt({ acceptAt: 0.9, acceptAtByKind: byKind }, [{ kind: 'attribute' }, { kind: 'pos' }])).toBe(0.9);
    expect(defaultAcceptAt({ acceptAt: 0.9, acceptAtByKind: byKind }, [{ kind: 'sentiment' }])).toBe(0.9);
    // a length is judged by its count beside a guided kind; alone, it takes its level
    expect(defaultAcceptAt({ acceptAt: 0.9, acceptAtByKind: byKind }, [{ kind: 'attribute' }, { kind: 'length' }])).toBe(0.5);
    expect(defaultAcceptAt({ acceptAt: 0.9, acceptAtByKind: { length: 0.7 } }, [{ kind: 'length' }])).toBe(0.7);
    // a disabled or weightless constraint does not raise the level
    expect(defaultAcceptAt({ acceptAt: 0.9, acceptAtByKind: byKind }, [{ kind: 'spans' }, { kind: 'pos', enabled: false }, { kind: 'sentiment', weight: 0 }])).toBe(0.5);
    // a guided kind with no level at all: draw every candidate
    expect(defaultAcceptAt({ acceptAtByKind: byKind }, [{ kind: 'spans' }, { kind: 'pos' }])).toBeUndefined();
    expect(defaultAcceptAt({ acceptAtByKind: byKind }, [{ kind: 'spans' }])).toBe(0.5);
    expect(defaultAcceptAt({ acceptAt: 0.9, acceptAtByKind: byKind }, [{ kind: 'spans' }], { enabled: false })).toBeUndefined();
  });

  it('candidates outside 1..16 are refused by name', () => {
    expect(parseConstraintSet({ version: 1, constraints: [], sampler: { candidates: 4 } }).sampler.candidates).toBe(4);
    expect(parseConstraintSet({ version: 1, constraints: [] }).sampler.candidates).toBe(1);
    expect(refusal({ version: 1, constraints: [], sampler: { candidates: 0 } }).message).toMatch(/sampler\.candidates/);
    expect(refusal({ version: 1, constraints: [], sampler: { candidates: 17 } }).message).toMatch(/sampler\.candidates/);
  });
});

describe('a continuous bundle\'s spacing for guided runs (isGuidedRun, continuousSpacing)', () => {
  it('a run is guided by an enabled guided constraint of weight > 0 with guidance on; hard, held and scored kinds are not', () => {
    const c = (x: object) => parseConstraintSet({ version: 1, constraints: [x] }).constraints;
    const on = { enabled: true, strength: 1 };
    for (const x of [{ kind: 'pos', tags: ['DET'] }, { kind: 'attribute', field: 'food', value: 'Thai' }, { kind: 'length', tokens: 9 }, { kind: 'sentiment', label: 'neutral' }, { kind: 'spans', spans: [[0, 1, 'NP']] }]) {
      expect(isGuidedRun(c(x), on), x.kind).toBe(true);
      expect(isGuidedRun(c({ ...x, enabled: false }), on), `${x.kind} disabled`).toBe(false);
      expect(isGuidedRun(c({ ...x, weight: 0 }), on), `${x.kind} weight 0`).toBe(false);
      expect(isGuidedRun(c(x), { enabled: false }), `${x.kind} guidance off`).toBe(false);
      expect(isGuidedRun(c(x), { enabled: true, strength: 0 }), `${x.kind} strength 0`).toBe(false);
    }
    for (const x of [{ kind: 'record', value: { name: 'A' } }, { kind: 'json-schema', schema: { type: 'object' } }, { kind: 'words', include: ['pub'] }]) expect(isGuidedRun(c(x), on), x.kind).toBe(false);
    expect(isGuidedRun([], undefined)).toBe(false);
  });

  it('guided runs take guided_steps when the bundle has one; everything else its steps', () => {
    expect(continuousSteps({ steps: 40, guidedSteps: 30 }, true)).toBe(30);
    expect(continuousSteps({ steps: 40, guidedSteps: 30 }, false)).toBe(40);
    expect(continuousSteps({ steps: 40 }, true)).toBe(40);
  });

  it('guided runs take guided_spacing when the bundle has one; everything else its spacing', () => {
    expect(continuousSpacing({ spacing: 0.5, guidedSpacing: 1 }, true)).toBe(1);
    expect(continuousSpacing({ spacing: 0.5, guidedSpacing: 1 }, false)).toBe(0.5);
    expect(continuousSpacing({ spacing: 0.5 }, true)).toBe(0.5);
  });
});

describe('exact top-k re-scoring by default (exactTopKOf)', () => {
  const pos = [{ kind: 'pos' }];
  it('the run\'s own setting wins; else on when it guides one of the bundle\'s kinds', () => {
    expect(exactTopKOf(pos, { exactTopK: false }, ['pos'])).toBe(false);
    expect(exactTopKOf([{ kind: 'attribute' }], { exactTopK: true }, [])).toBe(true);
    expect(exactTopKOf(pos, { exactTopK: null }, ['pos', 'spans'])).toBe(true);
    expect(exactTopKOf([{ kind: 'attribute' }, { kind: 'spans' }], {}, ['pos', 'spans'])).toBe(true);
    expect(exactTopKOf([{ kind: 'attribute' }, { kind: 'sentiment' }], {}, ['pos', 'spans'])).toBe(false);
    expect(exactTopKOf(pos, {}, undefined)).toBe(false);
  });
  it('a kind that is not guided (disabled, weight 0, guidance off) does not count', () => {
    expect(exactTopKOf([{ kind: 'pos', enabled: false }], {}, ['pos'])).toBe(false);
    expect(exactTopKOf([{ kind: 'pos', weight: 0 }], {}, ['pos'])).toBe(false);
    expect(exactTopKOf(pos, { enabled: false }, ['pos'])).toBe(false);
    expect(exactTopKOf([{ kind: 'record' }], {}, ['pos'])).toBe(false);
  });
});

describe('guidance scaled to the step count (scaleToSteps)', () => {
  const g = parseConstraintSet({ version: 1, constraints: [] }).sampler.guidance;
  it('is on by default and leaves 200 steps as stated', () => {
    expect(g.scaleToSteps).toBe(true);
    expect(guidanceAtSteps(g, 200)).toEqual(g);
  });
  it('takes larger Adagrad steps and stops over the same share of the run at fewer steps', () => {
    expect(guidanceAtSteps(g, 50)).toMatchObject({ stepSize: 0.4, offLastSteps: 3, iterations: g.iterations, strength: g.strength });
    expect(guidanceAtSteps(g, 25)).toMatchObject({ stepSize: 0.8, offLastSteps: 1 });
    expect(guidanceAtSteps(g, 400)).toMatchObject({ stepSize: 0.05, offLastSteps: 20 });
  });
  it('off: the settings as given at any step count; a recipe can say so', () => {
    const off = parseConstraintSet({ version: 1, constraints: [], sampler: { guidance: { scaleToSteps: false } } }).sampler.guidance;
    expect(guidanceAtSteps(off, 50)).toEqual(off);
  });
});

describe('a barring projector (a held length keeps <end> and <pad> out of the text before it)', () => {
  it('picks the best token outside the barred ones and keeps fixed tokens', () => {
    const V = 4;
    // position 0 prefers token 2 (barred), position 1 prefers 1, position 2 is fixed
    const scores = Float32Array.from([0, 1, 5, 2, 0, 3, 1, 2, 9, 9, 9, 9]);
    const p = barringProjector(10, 3, [2, 0], V);
    expect(Array.from(p.project(scores, Int32Array.from([-1, -1, 2])))).toEqual([3, 1, 2]);
    expect(Array.from(p.project(scores))).toEqual([3, 1, 1]);
  });
});
