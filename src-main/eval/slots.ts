/**
 * Slot errors of a data-to-text output: what BLEU does not see. A text can score well against the references and
 * still call a restaurant that is not family friendly "family-friendly", or put it near the wrong landmark. Counted
 * the way the E2E challenge's slot error rate counts them, with the studio's own matcher of attribute phrasings
 * (constraints/evaluators/e2e.ts `expresses`):
 * - missing: a record field whose value the text does not express;
 * - wrong: a record field whose value the text does not express while it expresses another value of that field
 *   ("family friendly" for familyFriendly = no, "near The Bakers" for near = Burger King);
 * - added: a field absent from the record whose value the text expresses (any value), except eatType, which texts
 *   write generically ("a restaurant") whether or not the record has it.
 * Names (name and near values) are matched together: a name the text writes that is neither the record's name nor
 * its near counts as a wrong near where the record has one, else as an added near.
 */
import { expresses } from '../constraints/evaluators/e2e';

export interface SlotCounts {
  /** Record fields over all texts. */
  fields: number;
  missing: number;
  wrong: number;
  added: number;
  /** Texts that express every field of their record and nothing wrong or added. */
  exact: number;
  texts: number;
}

const NAME_FIELDS = new Set(['name', 'near']);
/** Fields whose absence from the record a text cannot be blamed for mentioning generically. */
const NOT_ADDED = new Set(['eatType']);

/** One text's slot errors against its record. */
export type SlotErrors = Omit<SlotCounts, 'exact' | 'texts'>;

/** Missing, wrong and added fields together (0: the text is slot-exact). */
export const errorCount = (e: SlotErrors): number => e.missing + e.wrong + e.added;

/** The slot errors of one text for its record, given every field's known values (a bundle's record_schema). */
export function slotErrors(record: Record<string, string>, text: string, values: Record<string, string[]>): SlotErrors {
  const own = new Set(Object.entries(record).filter(([f]) => NAME_FIELDS.has(f)).map(([, v]) => v.toLowerCase()));
  // a name that is part of a name the record has ("Café" in "Café Rouge") is not another name
  const otherNames = [...new Set([...(values.name ?? []), ...(values.near ?? [])])]
    .filter((n) => !own.has(n.toLowerCase()) && ![...own].some((o) => o.includes(n.toLowerCase())))
    .filter((n) => expresses('name', n, text));
  let missing = 0;
  let wrong = 0;
  let added = 0;
  for (const [field, value] of Object.entries(record)) {
    if (expresses(field, value, text)) continue;
    const other = NAME_FIELDS.has(field)
      ? field === 'near' && otherNames.length > 0
      : (values[field] ?? []).some((v) => v !== value && expresses(field, v, text));
    if (other) wrong++;
    else missing++;
  }
  for (const field of Object.keys(values)) {
    if (field in record || NOT_ADDED.has(field) || field === 'name') continue;
    if (field === 'near' ? otherNames.length > 0 : (values[field] ?? []).some((v) => expresses(field, v, text))) added++;
  }
  return { fields: Object.keys(record).length, missing, wrong, added };
}

/** Slot errors summed over texts. */
export function sumSlotErrors(errors: readonly SlotErrors[]): SlotCounts {
  const c: SlotCounts = { fields: 0, missing: 0, wrong: 0, added: 0, exact: 0, texts: errors.length };
  for (const e of errors) {
    c.fields += e.fields;
    c.missing += e.missing;
    c.wrong += e.wrong;
    c.added += e.added;
    if (errorCount(e) === 0) c.exact++;
  }
  return c;
}

/** Slot counts of texts against their records. */
export function slotCounts(items: { record: Record<string, string>; text: string }[], values: Record<string, string[]>): SlotCounts {
  return sumSlotErrors(items.map(({ record, text }) => slotErrors(record, text, values)));
}

/** The slot error rate: (missing + wrong + added) / record fields. */
export const slotErrorRate = (c: SlotCounts): number => (c.fields ? errorCount(c) / c.fields : 0);
