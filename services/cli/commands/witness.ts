import { writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { NotFoundError, ValidationError } from '../../../schemas/index.js';
import { readPublicKey } from '../../shared/eventStore/sqlite/tamper/signing.js';
import { logOrigin } from '../../shared/eventStore/sqlite/tamper/tlogStore.js';
import { createWitness, witnessStoreCheckpoint } from '../../shared/eventStore/sqlite/tamper/witness.js';
import { EXIT } from '../exitCodes.js';
import { assertInputPath, type RegisterCommand } from '../program.js';
import { defaultStorePath } from './verify.js';

interface WitnessOpts {
  db?: string;
  state: string;
  key: string;
  logKey: string;
  name: string;
  origin?: string;
  out?: string;
}

/**
 * `iommutrail witness --state <file> --key <pem> --log-key <pem> [--db store] [--out file]`: an independent
 * witness run (its own key and state, kept outside the data folder): cosigns the store's latest checkpoint
 * only if a consistency proof shows it extends the last one this witness cosigned. Exit 0 cosigned, 1 refused.
 */
export const registerWitness: RegisterCommand = (program, run) => {
  program
    .command('witness')
    .description('cosign the latest checkpoint of a store, only if it consistently extends the last one this witness cosigned (detects truncation and forks)')
    .requiredOption('--state <file>', "the witness's own state file (keep it outside the data folder)")
    .requiredOption('--key <pem>', "the witness's own ed25519 private key (minted on first use, never replaced)")
    .requiredOption('--log-key <pem>', "the log's public key the witness trusts")
    .option('--name <name>', 'the name on the cosignature', 'iommutrail-witness')
    .option('--origin <origin>', "the log's origin (default: the one in the witness state, else the store's)")
    .option('--db <path>', 'SQLite store (default: $IOMMUTRAIL_DATA_DIR/events.sqlite or .data/events.sqlite)')
    .option('--out <file>', 'also write the cosigned checkpoint here (a witness location outside the data folder)')
    .action((opts: WitnessOpts) =>
      run(async () => {
        if (/[\s+]/.test(opts.name)) throw new ValidationError('--name: expected a name without spaces or +');
        const path = opts.db ?? defaultStorePath();
        assertInputPath(path);
        const db = new Database(path, { readonly: true, fileMustExist: true });
        db.defaultSafeIntegers(true);
        try {
          const origin = opts.origin ?? logOrigin(db);
          if (origin === undefined) throw new NotFoundError(`store ${path} has no transparency log yet`);
          const witness = createWitness({ statePath: opts.state, keyPath: opts.key, name: opts.name, log: { origin, publicKey: readPublicKey(opts.logKey) } });
          const r = witnessStoreCheckpoint(db, witness);
          if (!r.ok) {
            console.error(`witness REFUSED (${r.refusal}): ${r.reason}`);
            return EXIT.finding;
          }
          if (opts.out !== undefined) writeFileSync(opts.out, r.cosigned);
          process.stdout.write(r.cosigned);
          console.error(`witness: cosigned ${origin} at size ${r.size}; witness key ${witness.verifierKey}`);
          return EXIT.ok;
        } finally {
          db.close();
        }
      }),
    );
};
