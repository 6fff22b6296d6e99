/**
 * The one CSV writer of the service (analytics exports). RFC 4180 text: every string cell quoted, `"`
 * doubled, numbers bare, null empty, arrays and objects as JSON.
 *
 * **WARNING**: a spreadsheet runs a cell that starts with `=`, `+`, `-`, `@`, tab or CR as a formula
 * (`=HYPERLINK(...)` in an actor name is enough). Such a string gets a leading `'`, as OWASP advises for
 * CSV injection, so it opens as text; the value is still readable, with one visible quote in front.
 */
const FORMULA_START = /^[=+\-@\t\r]/;

/** a string as one quoted CSV cell, neutralised when a spreadsheet would read it as a formula */
export const toCsvText = (s: string): string => `"${(FORMULA_START.test(s) ? `'${s}` : s).replaceAll('"', '""')}"`;

export const toCsvCell = (value: unknown): string => {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  return toCsvText(typeof value === 'string' ? value : JSON.stringify(value));
};

/** a header line and one line per row, `\n` after each; `rows` are positional, in `columns` order */
export const toCsv = (columns: readonly string[], rows: readonly (readonly unknown[])[]): string => {
  let out = `${columns.map(toCsvText).join(',')}\n`;
  for (const row of rows) out += `${row.map(toCsvCell).join(',')}\n`;
  return out;
};
