import { existsSync, readdirSync } from 'node:fs';
import { z } from 'zod';
import { IllegalStateError, ValidationError } from '../../../schemas/index.js';
import { getSqliteEventStore } from '../../shared/eventStore/sqlite/sqliteEventStore.js';
import { exportBundle } from '../../shared/eventStore/sqlite/tamper/bundle.js';
import { EXIT } from '../exitCodes.js';
import { assertInputPath, timeOption, type RegisterCommand } from '../program.js';
import { defaultStorePath } from './verify.js';

const OptionsSchema = z.object({
  host: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/, 'expected a host name'),
  group: z.coerce.number().int().min(0).optional(),
  device: z.string().min(1).optional(),
  out: z.string().min(1),
  db: z.string().min(1).optional(),
});

/** `iommutrail export --host h [--group g] [--device d] [--from T] [--to T] --out dir` */
export const registerExport: RegisterCommand = (program, run) => {
  program
    .command('export')
    .description('write a self-contained evidence bundle (selected events, the host\'s other events as context, chain and Merkle inclusion proofs, signed checkpoint and seal, public key) that `verify --bundle` checks anywhere')
    .requiredOption('--host <host>', 'the host whose stream to export')
    .option('--group <n>', 'only events touching this IOMMU group')
    .option('--device <bdf>', 'only events touching this device')
    .option('--from <time>', 'from this wall-clock time (ns since the epoch or ISO date), inclusive')
    .option('--to <time>', 'to this wall-clock time, inclusive')
    .requiredOption('--out <dir>', 'bundle folder to create (must be empty or absent)')
    .option('--db <path>', 'SQLite store (default: $IOMMUTRAIL_DATA_DIR/events.sqlite or .data/events.sqlite)')
    .action((raw: Record<string, string | undefined>) =>
      run(async () => {
        const parsed = OptionsSchema.safeParse(raw);
        if (!parsed.success) {
          const issues = parsed.error.issues.map((i) => ({ path: `--${i.path.join('.')}`, message: i.message }));
          throw new ValidationError(issues.map((i) => `${i.path}: ${i.message}`).join('; '), issues);
        }
        const o = parsed.data;
        const fromTimeNs = timeOption('--from', raw.from);
        const toTimeNs = timeOption('--to', raw.to);
        const path = o.db ?? defaultStorePath();
        assertInputPath(path);
        if (existsSync(o.out) && readdirSync(o.out).length > 0) throw new IllegalStateError(`--out ${o.out} is not empty`);
        const store = getSqliteEventStore({ path });
        try {
          const r = await exportBundle(store, {
            host: o.host,
            outDir: o.out,
            ...(o.group !== undefined ? { group: o.group } : {}),
            ...(o.device !== undefined ? { device: o.device } : {}),
            ...(fromTimeNs !== undefined ? { fromTimeNs } : {}),
            ...(toTimeNs !== undefined ? { toTimeNs } : {}),
          });
          console.log(
            `exported ${r.events} selected event(s) of host-${o.host} (and ${r.context} more as context: revisions ${r.fromRevision}..${r.toRevision}, under the checkpoint of ${r.treeSize} leaves) to ${r.outDir}`,
          );
        } finally {
          await store.close();
        }
        return EXIT.ok;
      }),
    );
};
