import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Issue 19: COVERAGE.md has one row per item of the research's table 1 (items 1–22), and every file it names
 * exists, so the note "covered how, verified how" cannot silently rot.
 */
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const ITEMS = 22;

interface Row {
  readonly item: number;
  readonly cells: readonly string[];
}

/** the table rows of the document: `| 7 | vIOMMU | 6.13 | ... |` (a `|` inside backticks does not split) */
export const coverageRows = (markdown: string): Row[] =>
  markdown
    .split('\n')
    .filter((line) => /^\|\s*\d+\s*\|/.test(line))
    .map((line) => {
      const cells = line
        .replace(/`[^`]*`/g, (code) => code.replace(/\|/g, '\u2502'))
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim());
      return { item: Number(cells[0]), cells };
    });

/** the repository paths a row names: backticked text with a slash and a file extension */
export const namedFiles = (row: Row): string[] => row.cells.flatMap((c) => [...c.matchAll(/`([\w./-]+\/[\w.-]+\.\w+)`/g)].map((m) => m[1]!));

const problems = (markdown: string, exists: (path: string) => boolean): string[] => {
  const rows = coverageRows(markdown);
  const out: string[] = [];
  for (let item = 1; item <= ITEMS; item++) {
    const found = rows.filter((r) => r.item === item);
    if (found.length !== 1) out.push(`item ${item}: ${found.length} rows (expected exactly 1)`);
  }
  for (const r of rows) {
    if (r.item < 1 || r.item > ITEMS) out.push(`item ${r.item}: not an item of table 1 (1–${ITEMS})`);
    if (r.cells.length !== 7) out.push(`item ${r.item}: ${r.cells.length} columns (expected 7: #, item, release(s), status, covered by, verified by, unit test)`);
    if (r.cells.slice(1).some((c) => c === '')) out.push(`item ${r.item}: an empty cell`);
    if (!/\.spec\.ts`/.test(r.cells[6] ?? '')) out.push(`item ${r.item}: the unit test column names no *.spec.ts file`);
    for (const path of namedFiles(r)) if (!exists(path)) out.push(`item ${r.item}: ${path} does not exist`);
  }
  return out;
};

describe('projections/kernel/COVERAGE.md (issue 19)', () => {
  const markdown = readFileSync(join(here, 'COVERAGE.md'), 'utf8');

  it('issue 19 coverage: one row per item 1–22 of the research table, each naming files that exist and a unit test', () => {
    expect(coverageRows(markdown).map((r) => r.item)).toEqual(Array.from({ length: ITEMS }, (_, i) => i + 1));
    expect(problems(markdown, (p) => existsSync(join(root, p)))).toEqual([]);
  });

  it('issue 19 coverage: the check fails on a missing item, a duplicated one and a file that does not exist', () => {
    const rows = markdown.split('\n');
    const without9 = rows.filter((l) => !l.startsWith('| 9 |')).join('\n');
    expect(problems(without9, () => true)).toEqual(['item 9: 0 rows (expected exactly 1)']);
    const twice = [...rows, rows.find((l) => l.startsWith('| 9 |'))!].join('\n');
    expect(problems(twice, () => true)).toContain('item 9: 2 rows (expected exactly 1)');
    const gone = markdown.replace('`projections/kernel/ops/hwQueue.ts`', '`projections/kernel/ops/hwQueues.ts`');
    expect(problems(gone, (p) => existsSync(join(root, p)))).toEqual(['item 10: projections/kernel/ops/hwQueues.ts does not exist']);
  });
});
