import { ValidationError } from '../../../schemas/index.js';
import { apiClientFromOptions } from '../../shared/client/apiClient.js';
import { loadConfig } from '../../shared/config/config.js';
import { openConfiguredStore } from '../../shared/eventStore/openConfiguredStore.js';
import { readHistoryFile } from '../../shared/files/historyFile.js';
import { createIngestService, type IngestSummary } from '../../shared/ingest/ingestService.js';
import { EXIT } from '../exitCodes.js';
import { createProgress } from '../progress.js';
import { intOption, type RegisterCommand } from '../program.js';

/**
 * `iommutrail ingest <files...>`: JSON Lines histories into a running service (`--url`) or straight into
 * the local store (`--data-dir`, the service stopped). Same semantics both ways: bad lines are reported
 * with file, line and field, and the good ones are stored.
 */
export const registerIngest: RegisterCommand = (program, run) => {
  program
    .command('ingest')
    .description('ingest JSON Lines history files into the service (--url) or the local store (--data-dir)')
    .argument('<files...>', 'history files, or - for stdin')
    .option('--url <url>', 'a running service (also IOMMUTRAIL_URL)')
    .option('--token <token>', 'bearer token with the ingest role (also IOMMUTRAIL_TOKEN)')
    .option('--data-dir <dir>', 'write into this data folder directly instead of a service')
    .option('--batch <n>', 'events per request/transaction', '1000')
    .option('--json', 'print a JSON summary')
    .action((files: string[], opts: { url?: string; token?: string; dataDir?: string; batch: string; json?: boolean }) =>
      run(async () => {
        const batchSize = intOption('--batch', opts.batch, 1000);
        if (batchSize < 1 || batchSize > 10_000) throw new ValidationError('--batch: expected 1..10000');
        let send: (lines: { file: string; line: number; raw: unknown }[]) => Promise<IngestSummary>;
        let close = async () => {};
        if (opts.dataDir || !(opts.url ?? process.env.IOMMUTRAIL_URL)) {
          const config = loadConfig({ overrides: opts.dataDir ? { dataDir: opts.dataDir } : {} });
          const store = await openConfiguredStore(config);
          const ingest = createIngestService({ store });
          send = (lines) => ingest.ingest(lines.map((l) => l.raw), 'events');
          close = () => store.close();
        } else {
          const client = apiClientFromOptions(opts);
          send = async (lines) => (await client.postNdjson<IngestSummary>('/v1/events', lines.map((l) => JSON.stringify(l.raw)))).body;
        }
        const totals = { accepted: 0, duplicate: 0, rejected: 0 };
        const errors: string[] = [];
        const progress = createProgress('ingest');
        let seen = 0;
        const flush = async (batch: { file: string; line: number; raw: unknown }[]) => {
          if (batch.length === 0) return;
          const r = await send(batch);
          totals.accepted += r.accepted;
          totals.duplicate += r.duplicate;
          totals.rejected += r.rejected;
          for (const item of r.results) {
            if (item.status !== 'rejected') continue;
            const src = batch[item.index]!;
            if (errors.length < 100) errors.push(`${src.file}:${src.line}: ${(item.errors ?? []).map((e) => `${e.path.replace(/^events\[\d+\]\.?/, '')}: ${e.message}`).join('; ')}`);
          }
        };
        try {
          for (const file of files) {
            let batch: { file: string; line: number; raw: unknown }[] = [];
            for await (const line of readHistoryFile(file)) {
              seen += 1;
              if (!line.ok) {
                totals.rejected += 1;
                if (errors.length < 100) errors.push(line.error.message);
                continue;
              }
              batch.push({ file, line: line.line, raw: line.event });
              if (batch.length >= batchSize) {
                await flush(batch);
                batch = [];
                progress.update(seen);
              }
            }
            await flush(batch);
          }
        } finally {
          progress.stop();
          await close();
        }
        if (opts.json) console.log(JSON.stringify({ ...totals, errors }));
        else {
          for (const e of errors) console.error(e);
          console.log(`${totals.accepted} accepted, ${totals.duplicate} duplicate, ${totals.rejected} rejected`);
        }
        return totals.rejected > 0 ? EXIT.badInput : EXIT.ok;
      }),
    );
};
