import { hash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { PUBLIC_KEY_FILE, readPublicKey } from '../../services/shared/eventStore/sqlite/tamper/signing.js';
import { verifySqliteStore } from '../../services/shared/eventStore/sqlite/tamper/verifyStore.js';
import { defineFigure } from '../harness.js';
import { buildVerifyFixture } from '../tlogStoreFixture.js';

/**
 * Issue 20: `verify` of a whole store (chains, seals, tree, checkpoints, derived columns, index rows) at 1e6
 * and 1e7 events, each beside the same run's raw limit: one SELECT of the same rows (JSON and chain hashes)
 * in position order with a sha256 of each event's bytes. The runner prints how the time grows with size.
 *
 * A 1e7-event store takes the store itself about 15 minutes to write here (5 GB): with
 * IOMMUTRAIL_VERIFY_FIXTURES=<dir> the figure uses `<dir>/<size>/store.sqlite` made before (by
 * `tsx bench/tlogStoreFixture.ts <dir>/<size>/store.sqlite <size>`); otherwise it builds one in its folder.
 * Verify reads the file; the OS page cache is what it is (the fixture was just written or read).
 */
export default defineFigure({
  name: 'verify at scale (transparency log)',
  issue: 20,
  sizes: { quick: [2_000], full: [1_000_000, 10_000_000] },
  async measure(size, ctx) {
    const fixtures = process.env.IOMMUTRAIL_VERIFY_FIXTURES;
    const given = fixtures !== undefined ? join(fixtures, String(size), 'store.sqlite') : undefined;
    const path = given !== undefined && existsSync(given) ? given : join(ctx.tmpDir, 'store.sqlite');
    if (path !== given) {
      ctx.log(`building a ${size}-event store in ${path}`);
      await buildVerifyFixture(path, size, ctx.log);
    }
    const db = new Database(path, { readonly: true });
    db.defaultSafeIntegers(true);
    try {
      let t = process.hrtime.bigint();
      let c = process.cpuUsage();
      let n = 0;
      for (const r of db.prepare<[], { json: string; prev_hash: Buffer; hash: Buffer }>('SELECT json, prev_hash, hash FROM events ORDER BY position').iterate()) {
        hash('sha256', r.json, 'buffer');
        n++;
      }
      const scanMs = Number(process.hrtime.bigint() - t) / 1e6;
      const scanCpu = cpuSeconds(c);
      t = process.hrtime.bigint();
      c = process.cpuUsage();
      const report = verifySqliteStore(db, readPublicKey(join(dirname(path), PUBLIC_KEY_FILE)));
      const verifyMs = Number(process.hrtime.bigint() - t) / 1e6;
      const verifyCpu = cpuSeconds(c);
      if (!report.ok) throw new Error(`verify found ${report.findings.length} finding(s) in an untouched store: ${report.findings[0]?.message}`);
      if (report.events !== n) throw new Error(`verify walked ${report.events} events, the store holds ${n}`);
      ctx.log(`${n} events: verify ${(verifyMs / 1000).toFixed(1)} s wall, ${verifyCpu.toFixed(1)} s CPU; raw SELECT + sha256 ${(scanMs / 1000).toFixed(1)} s wall, ${scanCpu.toFixed(1)} s CPU`);
      return [
        { label: 'verify (chains, seals, tree, checkpoints, columns, index rows), wall time', value: verifyMs, unit: 'ms', higherIsBetter: false, reference: { label: 'raw SELECT of the same rows + sha256 of each', value: scanMs, kind: 'raw-limit' } },
        { label: 'verify, CPU time', value: verifyCpu * 1000, unit: 'ms', higherIsBetter: false, reference: { label: 'raw SELECT of the same rows + sha256 of each, CPU time', value: scanCpu * 1000, kind: 'raw-limit' } },
      ];
    } finally {
      db.close();
    }
  },
});

const cpuSeconds = (since: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
};
