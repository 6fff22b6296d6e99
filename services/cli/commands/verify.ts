import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { ValidationError } from '../../../schemas/index.js';
import { verifyBundle } from '../../shared/eventStore/sqlite/tamper/bundle.js';
import { formatFinding, type VerifyReport } from '../../shared/eventStore/sqlite/tamper/findings.js';
import { PUBLIC_KEY_FILE, readPublicKey, retiredPublicKeys } from '../../shared/eventStore/sqlite/tamper/signing.js';
import { sqliteStorePath } from '../../shared/eventStore/openConfiguredStore.js';
import type { ExternalCheckpoint } from '../../shared/eventStore/sqlite/tamper/tlogVerify.js';
import { verifySqliteStore } from '../../shared/eventStore/sqlite/tamper/verifyStore.js';
import { EXIT } from '../exitCodes.js';
import { assertInputPath, type RegisterCommand } from '../program.js';

/** the store file under the data folder, as `serve` writes it */
export const defaultStorePath = (): string => sqliteStorePath(process.env.IOMMUTRAIL_DATA_DIR ?? '.data');

const toJson = (report: VerifyReport): string =>
  JSON.stringify(report, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));

const collect = (value: string, previous: string[]): string[] => [...previous, value];

const readCheckpointFile = (file: string): ExternalCheckpoint => {
  assertInputPath(file);
  return { label: file, note: readFileSync(file, 'utf8') };
};

/** `iommutrail verify [--db path | --bundle dir]`: exit 0 clean, 1 tampering found, 2 bad input, 3 missing */
export const registerVerify: RegisterCommand = (program, run) => {
  program
    .command('verify')
    .description('check the hash chains and signed checkpoints of a store or an evidence bundle; names the first event modified, removed, reordered or inserted')
    .option('--db <path>', 'SQLite store to check (default: $IOMMUTRAIL_DATA_DIR/events.sqlite or .data/events.sqlite)')
    .option('--bundle <dir>', 'evidence bundle folder written by `iommutrail export`')
    .option('--public-key <pem>', "the store's public key you trust (default: the key beside the store / inside the bundle)")
    .option('--checkpoint <file>', 'an earlier signed checkpoint (from a witness, a bundle or a file) the store must extend; repeatable', collect, [])
    .option('--old-public-key <pem>', 'a rotated-out key that signed older checkpoints; repeatable', collect, [])
    .option('--origin <origin>', "the log's origin you trust (default: the one the store or bundle names)")
    .option('--json', 'print the report as JSON')
    .action((opts: { db?: string; bundle?: string; publicKey?: string; checkpoint: string[]; oldPublicKey: string[]; origin?: string; json?: boolean }) =>
      run(async () => {
        if (opts.db !== undefined && opts.bundle !== undefined) throw new ValidationError('give either --db or --bundle, not both');
        const pinned = opts.publicKey !== undefined ? readPublicKey(opts.publicKey) : undefined;
        let report: VerifyReport;
        let subject: string;
        if (opts.bundle !== undefined) {
          assertInputPath(opts.bundle);
          subject = `bundle ${opts.bundle}`;
          report = verifyBundle(opts.bundle, { ...(pinned ? { publicKey: pinned } : {}), ...(opts.origin !== undefined ? { origin: opts.origin } : {}) });
        } else {
          const path = opts.db ?? defaultStorePath();
          assertInputPath(path);
          subject = `store ${path}`;
          const beside = join(dirname(path), PUBLIC_KEY_FILE);
          const key = pinned ?? (existsSync(beside) ? readPublicKey(beside) : undefined);
          const db = new Database(path, { readonly: true, fileMustExist: true });
          db.defaultSafeIntegers(true);
          try {
            report = verifySqliteStore(db, key, {
              external: opts.checkpoint.map(readCheckpointFile),
              // rotated-out keys: the ones given, else the ones kept beside the store (`keys rotate`)
              olderKeys: [...opts.oldPublicKey.map(readPublicKey), ...(pinned ? [] : retiredPublicKeys(dirname(path)))],
              ...(opts.origin !== undefined ? { origin: opts.origin } : {}),
            });
          } finally {
            db.close();
          }
          if (!pinned && key) report = { ...report, warnings: [...report.warnings, `trusting the key in the data folder (${beside}): pin a copy kept elsewhere with --public-key`] };
        }
        if (opts.json) console.log(toJson(report));
        else {
          for (const f of report.findings) console.log(formatFinding(f));
          for (const w of report.warnings) console.error(`warning: ${w}`);
          console.log(
            report.ok
              ? `${subject}: OK, ${report.events} event(s) in ${report.streams} stream(s), ${report.sealedEvents} covered by ${report.seals} signed checkpoint(s)${report.log ? `; Merkle tree of ${report.log.size} leaves, ${report.log.signedSize} under the latest of ${report.log.checkpoints} signed checkpoint(s)` : ''}`
              : `${subject}: TAMPERED, ${report.findings.length} finding(s); first: ${formatFinding(report.findings[0]!)}`,
          );
        }
        return report.ok ? EXIT.ok : EXIT.finding;
      }),
    );
};
