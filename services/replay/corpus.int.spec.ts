import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffExpectations, toExpectation, replayHistory, VARIANT_NAMES, type GoldenFile } from '../../replay/index.js';
import { CORPUS } from '../../replay/testing/scenarios.js';
import { readHistoryFile } from '../shared/files/historyFile.js';
import { writeCorpus } from './testing/writeCorpus.js';

const dir = 'replay/corpus';
const histories = readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort();

describe('replay corpus (replay/corpus/*.jsonl against their golden files)', () => {
  it('covers every worked scenario of the reference, each with expectations under every variant', () => {
    expect(histories).toEqual(CORPUS.map((s) => `${s.name}.jsonl`).sort());
    for (const h of histories) {
      const golden = JSON.parse(readFileSync(join(dir, h.replace('.jsonl', '.golden.json')), 'utf8')) as GoldenFile;
      // every built-in variant, and any stage (upstream@<release>) the corpus also records
      expect(Object.keys(golden.variants).filter((v) => !v.includes('@')).sort()).toEqual([...VARIANT_NAMES].sort());
    }
  });

  it('given the scenario definitions (replay/testing/scenarios.ts), when written by writeCorpus, then each corpus file holds the same events (the committed corpus is what the scenarios say)', () => {
    const out = mkdtempSync(join(tmpdir(), 'iommutrail-corpus-'));
    try {
      // the header line as written, every event as its data (the writer's key order aside)
      const events = (path: string) => readFileSync(path, 'utf8').split('\n').filter((l) => l !== '').map((l) => (l.startsWith('#') ? l : (JSON.parse(l) as unknown)));
      const written = writeCorpus(out).map((p) => p.slice(out.length + 1)).sort();
      expect(written).toEqual(histories);
      for (const h of histories) expect(events(join(out, h)), h).toEqual(events(join(dir, h)));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  for (const h of histories) {
    it(`${h}: every variant (and stage) replays as its golden file expects`, async () => {
      const golden = JSON.parse(readFileSync(join(dir, h.replace('.jsonl', '.golden.json')), 'utf8')) as GoldenFile;
      for (const variant of VARIANT_NAMES) {
        const report = await replayHistory({ variant, events: readHistoryFile(join(dir, h)), source: h });
        expect(report.inputErrors).toEqual([]);
        expect(diffExpectations(golden.variants[variant], toExpectation(report))).toEqual([]);
        if (variant === 'upstream') expect(report.summary.divergences).toBe(0);
      }
      for (const stage of Object.keys(golden.variants).filter((v) => v.includes('@'))) {
        const report = await replayHistory({ variant: stage, events: readHistoryFile(join(dir, h)), source: h });
        expect(diffExpectations(golden.variants[stage], toExpectation(report))).toEqual([]);
      }
    });
  }
});
