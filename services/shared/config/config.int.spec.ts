import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

describe('config', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'iommutrail-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('given nothing, then the embedded defaults', () => {
    const c = loadConfig({ env: {} });
    expect(c).toMatchObject({ dataDir: '.data', http: { port: 8377, host: '127.0.0.1' }, store: { kind: 'sqlite', durability: 'full' }, analytics: { enabled: true } });
  });

  it('layers defaults ← file ← environment', () => {
    const file = path.join(dir, 'c.yaml');
    writeFileSync(file, 'http:\n  port: 9000\n  maxBatch: 50\nstore:\n  durability: normal\n');
    const c = loadConfig({ file, env: { IOMMUTRAIL_HTTP_PORT: '9100', CLICKHOUSE_URL: 'http://ch:8123' } });
    expect(c.http).toMatchObject({ port: 9100, maxBatch: 50 });
    expect(c.store.durability).toBe('normal');
    expect(c.analytics.url).toBe('http://ch:8123');
  });

  it('names a wrong setting in the file', () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'http:\n  port: 70000\n  colour: blue\nstore:\n  kind: mongodb\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/http\.port: .*65535.*|store\.kind/);
    try {
      loadConfig({ file, env: {} });
    } catch (e) {
      const paths = (e as { issues: { path: string }[] }).issues.map((i) => i.path).sort();
      expect(paths).toEqual(['http.colour', 'http.port', 'store.kind']);
    }
  });

  it('names a wrong environment variable', () => {
    expect(() => loadConfig({ env: { IOMMUTRAIL_HTTP_PORT: 'eighty' } })).toThrow('IOMMUTRAIL_HTTP_PORT: expected an integer, got "eighty"');
    expect(() => loadConfig({ env: { IOMMUTRAIL_ANALYTICS: 'maybe' } })).toThrow('IOMMUTRAIL_ANALYTICS: expected true or false');
    expect(() => loadConfig({ env: { IOMMUTRAIL_TOKENS: 'ci:ingest:not-a-hash' } })).toThrow(/auth\.tokens\[0\]\.sha256/);
  });

  it('issue 18: the stale-collector limit is a setting: 24h by default, from the file (analytics.staleAfter) or IOMMUTRAIL_STALE_AFTER; a wrong one is named', () => {
    expect(loadConfig({ env: {} }).analytics.staleAfter).toBe('24h');
    const file = path.join(dir, 'stale.yaml');
    writeFileSync(file, 'analytics:\n  staleAfter: 6h\n');
    expect(loadConfig({ file, env: {} }).analytics.staleAfter).toBe('6h');
    expect(loadConfig({ file, env: { IOMMUTRAIL_STALE_AFTER: '1h' } }).analytics.staleAfter).toBe('1h');
    expect(() => loadConfig({ env: { IOMMUTRAIL_STALE_AFTER: 'soon' } })).toThrow(/analytics\.staleAfter: expected a duration such as 30m, 6h or 2d/);
    expect(() => loadConfig({ env: { IOMMUTRAIL_STALE_AFTER: '0h' } })).toThrow(/analytics\.staleAfter/);
  });

  it('dash9 #23: the pre-aggregate compaction interval is a setting: 1h by default, from the file (analytics.compactEvery) or IOMMUTRAIL_COMPACT_EVERY; a wrong or too short one is named', () => {
    expect(loadConfig({ env: {} }).analytics.compactEvery).toBe('1h');
    const file = path.join(dir, 'compact.yaml');
    writeFileSync(file, 'analytics:\n  compactEvery: 6h\n');
    expect(loadConfig({ file, env: {} }).analytics.compactEvery).toBe('6h');
    expect(loadConfig({ file, env: { IOMMUTRAIL_COMPACT_EVERY: '30m' } }).analytics.compactEvery).toBe('30m');
    expect(() => loadConfig({ env: { IOMMUTRAIL_COMPACT_EVERY: 'hourly' } })).toThrow(/analytics\.compactEvery: expected a duration of at least 1m/);
    expect(() => loadConfig({ env: { IOMMUTRAIL_COMPACT_EVERY: '10s' } })).toThrow(/analytics\.compactEvery/);
  });

  it('names a missing or unreadable file', () => {
    expect(() => loadConfig({ file: path.join(dir, 'nope.yaml'), env: {} })).toThrow(/does not exist/);
    const file = path.join(dir, 'broken.json');
    writeFileSync(file, '{ "http": ');
    expect(() => loadConfig({ file, env: {} })).toThrow(/not valid JSON/);
  });
});
