import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CORPUS } from '../../../replay/testing/scenarios.js';

/**
 * Writes replay/corpus/*.jsonl from the scenario definitions (replay/testing/scenarios.ts).
 * Run: `npx tsx services/replay/testing/writeCorpus.ts [dir]`, then refresh the expectations on purpose with
 * `npm run iommutrail -- replay --check --update replay/corpus/*.jsonl`.
 */
export const writeCorpus = (dir: string): string[] => {
  mkdirSync(dir, { recursive: true });
  return CORPUS.map((s) => {
    const path = join(dir, `${s.name}.jsonl`);
    const header = `# ${s.scenario}: ${s.title} (protocol.md §3; outcomes as recorded on upstream Linux)\n`;
    writeFileSync(path, header + s.events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    return path;
  });
};

if (process.argv[1]?.endsWith('writeCorpus.ts')) {
  for (const p of writeCorpus(process.argv[2] ?? 'replay/corpus')) console.error(`wrote ${p}`);
}
