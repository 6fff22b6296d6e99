import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffExpectations, toExpectation, replayHistory, VARIANT_NAMES, type GoldenFile } from '../../replay/index.js';
import { CORPUS } from '../../replay/testing/scenarios.js';
import { readHistoryFile } from '../shared/files/historyFile.js';

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
