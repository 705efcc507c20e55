/**
 * Whether a text expresses an E2E attribute value, with the corpus's usual phrasings normalised: case, "£20-25" /
 * "£20 to £25", "5 out of 5" / "5 stars", family friendly yes/no (including negations), "city centre" / "centre of
 * the city", "riverside" / "by the river". Numeric and word values of price and rating are paired as the corpus
 * pairs them (less than £20 ~ cheap, £20-25 ~ moderate, more than £30 ~ high; 1/3/5 out of 5 ~ low/average/high).
 * Names (name, near) must appear as whole words, case-insensitively.
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

const NEG_FAMILY = /\b(?:not|n't|isn't|is not|non|never|no)\b[^.]{0,25}\b(?:famil(?:y|ies)|kids?|child(?:ren)?)\b|\b(?:family|kids?|child(?:ren)?)[- ]unfriendly\b|\badults? only\b|\bnot (?:suitable|good|ideal|recommended|great) for (?:kids|children|families)\b|\b(?:no|without) (?:kids|children)\b/;
const POS_FAMILY = /\b(?:family|kids?|child(?:ren)?)[- ]friendly\b|\bfamilies\b|\bfor (?:the )?(?:whole )?family\b|\b(?:kids|children)\b|\bfamily\b/;

// The corpus pairs numeric and word values (a price of "less than £20" is written "cheap", a rating of "5 out of 5"
// "highly rated"): each value is matched by its own phrasings and by those of its partner.
const PRICE_CLASS: Record<string, string> = { 'less than £20': 'low', cheap: 'low', '£20-25': 'mid', moderate: 'mid', 'more than £30': 'high', high: 'high' };
const PRICE_WORDS: Record<string, string> = {
  low: "cheap|inexpensive|low[- ]cost|low[- ]priced?|low prices?|affordabl[ey]|budget|(?:less than|under|below|lower than|cheaper than) (?:£ ?20|20 ?(?:pounds|£|euros?|dollars)|twenty)|£ ?20 (?:or less|and under)",
  mid: "moderate(?:ly)?(?:[- ]priced?)?|average[- ]price[ds]?|average prices?|mid[- ]range|mid[- ]price[ds]?|reasonabl[ey](?: priced)?|£ ?20 ?(?:-|to|and) ?£? ?25|20 ?(?:-|to) ?25 (?:pounds|£|euros?|dollars)|(?:price range|prices?)(?: is| are| of)? (?:£ ?)?20 ?(?:-|to) ?(?:£ ?)?25|twenty (?:to|-) twenty[- ]five",
  high: "high[- ](?:price[ds]?|cost|end)|expensive|pricey|costly|high prices?|price range is high|prices are high|(?:more than|over|above|higher than|in excess of) (?:£ ?30|30 ?(?:pounds|£|euros?|dollars)|thirty)|£ ?30 (?:\\+|plus|and (?:over|above|up))",
};
const RATING_CLASS: Record<string, string> = { '1 out of 5': 'low', low: 'low', '3 out of 5': 'mid', average: 'mid', '5 out of 5': 'high', high: 'high' };
const RATING_WORDS: Record<string, string> = { low: '(?:low|poor|bad)', mid: '(?:average|medium|mid|middling|ok|decent)', high: '(?:high|excellent|great|top)' };
const RATING_NUM: Record<string, string> = { low: '1', mid: '3', high: '5' };

function ratingPattern(value: string): RegExp | null {
  const cls = RATING_CLASS[value];
  if (!cls) return word(esc(value));
  const n = RATING_NUM[cls]!;
  const w = NUM_WORDS[n]!;
  const syn = RATING_WORDS[cls]!;
  const numeric = `(?:${n}|${w}) out of (?:5|five)|${n} ?/ ?5|(?:${n}|${w})[- ]stars?|rated (?:${n}|${w})\\b`;
  const words = `\\b${syn}\\b[^.]{0,30}\\brat(?:ing|ings|ed)\\b|\\brat(?:ing|ings|ed)\\b[^.]{0,30}\\b${syn}\\b|\\b${syn}(?:ly)?[- ]rated\\b`;
  return new RegExp(`(?:^|[^\\p{L}\\p{N}])(?:${numeric})(?:$|[^\\p{L}\\p{N}])|${words}`, 'u');
}

function pricePattern(value: string): RegExp {
  const cls = PRICE_CLASS[value];
  if (!cls) return word(esc(value));
  return new RegExp(`(?:^|[^\\p{L}\\p{N}])(?:${PRICE_WORDS[cls]})(?:$|[^\\p{L}\\p{N}])`, 'u');
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
      if (v === 'english') return /\b(?:english|british)\b/.test(t);
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
