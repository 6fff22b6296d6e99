import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithEngine } from '../../shared/testing/engines.js';
import { createAnalyticsClient, type AnalyticsClient } from './clickhouseClient.js';
import { chdbAvailability } from './testing/chdbAvailability.js';

describeWithEngine('chdb', chdbAvailability(), 'Analytics > the embedded client (chdb)', () => {
  let dir: string;
  let ac: AnalyticsClient;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'iommutrail-client-'));
    ac = createAnalyticsClient({ target: { kind: 'embedded', path: dir }, database: 'client' });
  });
  afterAll(async () => {
    await ac.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** the engine's count of expressions compiled so far in this process */
  const compiled = async (): Promise<number> => {
    const rs = await ac.client.query({ query: `SELECT sum(value) AS n FROM system.events WHERE event = 'CompileFunction'`, format: 'JSONEachRow' });
    const [row] = await rs.json<{ n: unknown }>();
    return Number(row?.n ?? 0);
  };
  const run = async (query: string, settings: Record<string, number> = {}): Promise<void> => {
    for (let i = 0; i < 5; i++) await (await ac.client.query({ query, format: 'JSONEachRow', clickhouse_settings: settings })).json();
  };

  it('dash7 #23: given an expression queried five times, when sent through the embedded client, then the engine compiles nothing: no expression, aggregate or sort (its JIT cost the third and fourth dashboard loads of every process ~140 ms of CPU each); asked to compile, the same engine does', async () => {
    const before = await compiled();
    await run('SELECT number * 3 + 1 AS x FROM numbers(100000) WHERE (number * 5 + 1) % 7 = 1 LIMIT 3');
    // nor an aggregate (compiled apart from expressions), nor a sort
    await run('SELECT sum(number) AS s, max(number) AS m, number % 7 AS k FROM numbers(100000) GROUP BY k ORDER BY k, s DESC');
    expect(await compiled()).toBe(before);
    // the control: the count moves when the engine does compile (another expression, so none is cached yet)
    await run('SELECT number * 5 + 2 AS x FROM numbers(100000) WHERE (number * 3 + 2) % 11 = 3 LIMIT 3', { compile_expressions: 1 });
    expect(await compiled()).toBeGreaterThan(before);
  });
});
