/**
 * Whether a text expresses an E2E attribute value, with the corpus's usual phrasings normalised: case, "£20-25" /
 * "£20 to £25", "5 out of 5" / "5 stars", family friendly yes/no (including negations), "city centre" / "centre of
 * the city", "riverside" / "by the river". Names (name, near) must appear as whole words, case-insensitively.
 */

function norm(s: string): string {
  return s
    .toLowerCase()
    .replace(/[\u2018\u2019]/g, "'")
    .replace(/[\u2013\u2014]/g, '-')
    .replace(/\s+/g, ' ')
    .trim();
}

const esc = (s: string) => s.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
const word = (src: string) => new RegExp(`(?:^|[^\\p{L}\\p{N}])(?:${src})(?:$|[^\\p{L}\\p{N}])`, 'u');

const NUM_WORDS: Record<string, string> = { '1': 'one', '2': 'two', '3': 'three', '4': 'four', '5': 'five' };

const NEG_FAMILY = /\b(?:not|n't|isn't|is not|non|never|no)\b[^.]{0,25}\b(?:family|kids?|child(?:ren)?)\b|\b(?:family|kids?|child(?:ren)?)[- ]unfriendly\b|\badults? only\b|\bnot (?:suitable|good|ideal|recommended|great) for (?:kids|children|families)\b|\b(?:no|without) (?:kids|children)\b/;
const POS_FAMILY = /\b(?:family|kids?|child(?:ren)?)[- ]friendly\b|\bfamilies\b|\bfor (?:the )?(?:whole )?family\b|\b(?:kids|children)\b|\bfamily\b/;

function ratingPattern(value: string): RegExp | null {
  const m = /^([1-5]) out of 5$/.exec(value);
  if (m) {
    const n = m[1]!;
    const w = NUM_WORDS[n]!;
    return word(`(?:${n}|${w}) out of (?:5|five)|${n} ?/ ?5|(?:${n}|${w})[- ]stars?|rated (?:${n}|${w})\\b`);
  }
  const v = esc(value);
  // "low customer rating", "rated low", "rating is low", "average rating", "high ratings"
  const syn = value === 'low' ? '(?:low|poor|bad)' : value === 'high' ? '(?:high|excellent|great|top)' : value === 'average' ? '(?:average|medium|mid|middling|ok|decent)' : v;
  return new RegExp(`\\b${syn}\\b[^.]{0,30}\\brat(?:ing|ings|ed)\\b|\\brat(?:ing|ings|ed)\\b[^.]{0,30}\\b${syn}\\b|\\b${syn}ly[- ]rated\\b`);
}

function pricePattern(value: string): RegExp {
  switch (value) {
    case 'cheap': return /\b(?:cheap|inexpensive|low[- ]cost|low[- ]price[ds]?|affordabl[ey]|budget|low prices?)\b/;
    case 'moderate': return /\b(?:moderate(?:ly)?|average[- ]price[ds]?|mid[- ]range|mid[- ]price[ds]?|reasonabl[ey])\b/;
    case 'high': return /\b(?:high[- ](?:price[ds]?|cost|end)|expensive|pricey|costly|high prices?|price range is high|prices are high)\b/;
    case 'less than £20': return /(?:less than|under|below|lower than|cheaper than) £ ?20\b|£ ?20 (?:or less|and under)/;
    case 'more than £30': return /(?:more than|over|above|higher than|in excess of) £ ?30\b|£ ?30 (?:\+|plus|and (?:over|above|up))/;
    case '£20-25': return /£ ?20 ?(?:-|to|and) ?£? ?25\b/;
    default: return word(esc(norm(value)));
  }
}

/** Whether `text` expresses `field = value` (E2E conventions; other fields: the value as a whole word). */
export function expresses(field: string, value: string, text: string): boolean {
  const t = norm(text);
  const v = norm(value);
  switch (field) {
    case 'familyFriendly':
      if (v === 'yes') return POS_FAMILY.test(t) && !NEG_FAMILY.test(t);
      if (v === 'no') return NEG_FAMILY.test(t);
      return false;
    case 'priceRange':
      return pricePattern(v).test(t);
    case 'customer rating':
      return ratingPattern(v)?.test(t) ?? false;
    case 'area':
      if (v === 'riverside') return /\briver ?side\b|\b(?:by|on|near|along|beside|next to) the river\b|\briver\b/.test(t);
      if (v === 'city centre') return /\bcity cent(?:re|er)\b|\bcent(?:re|er) of (?:the )?(?:city|town)\b|\bdowntown\b|\btown cent(?:re|er)\b/.test(t);
      return word(esc(v)).test(t);
    case 'food':
      if (v === 'fast food') return /\bfast[- ]food\b/.test(t);
      return word(esc(v)).test(t);
    case 'eatType':
      if (v === 'coffee shop') return /\bcoffee[- ]?shops?\b|\bcaf(?:e|é)s?\b/.test(t);
      if (v === 'pub') return /\bpubs?\b/.test(t);
      if (v === 'restaurant') return /\brestaurants?\b/.test(t);
      return word(esc(v)).test(t);
    default:
      return word(esc(v)).test(t);
  }
}
