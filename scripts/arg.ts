/** A script's `--name value` option from process.argv, else `dflt`; a name without a value is refused by name. */
export function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  if (i < 0) return dflt;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
  return v;
}
