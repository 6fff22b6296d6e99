import { loadConfig } from '../../shared/config/config.js';
import { tokensFilePath } from '../../shared/config/tokens.js';
import { startService } from '../../serve/server.js';
import { loadExtensions } from '../../serve/extensions.js';
import { EXIT } from '../exitCodes.js';
import { intOption, type RegisterCommand } from '../program.js';

/** `iommutrail serve`: the main job on embedded defaults (SQLite store, chdb analytics) */
export const registerServe: RegisterCommand = (program, run) => {
  program
    .command('serve')
    .description('run the ingest and query service (embedded defaults: SQLite event store, chdb analytics)')
    .option('--config <file>', 'YAML or JSON config (also IOMMUTRAIL_CONFIG)')
    .option('--data-dir <dir>', 'where the store, snapshots and analytics live (default .data)')
    .option('--host <addr>', 'listen address (default 127.0.0.1)')
    .option('--port <n>', 'listen port (default 8377; 0 picks a free one)')
    .option('--no-analytics', 'do not start the ClickHouse sink and dashboard')
    .action((opts: { config?: string; dataDir?: string; host?: string; port?: string; analytics: boolean }) =>
      run(async () => {
        const config = loadConfig({
          file: opts.config,
          overrides: {
            ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
            http: {
              ...(opts.host ? { host: opts.host } : {}),
              ...(opts.port !== undefined ? { port: intOption('--port', opts.port, 8377) } : {}),
            },
            ...(opts.analytics === false ? { analytics: { enabled: false } } : {}),
          },
        });
        const service = await startService(config, { extensions: loadExtensions });
        if (service.mintedToken) {
          console.error(`iommutrail: no token configured; minted an admin token (stored hashed in ${config.dataDir}/tokens.json, shown only now):`);
          console.error(`  ${service.mintedToken}`);
        } else if (config.auth.tokens.length === 0) {
          // a restart: the first banner may be long gone, and tokens are kept hashed, so a new one is the way
          const cli = process.env.npm_lifecycle_event === 'start' ? 'npm run iommutrail --' : 'iommutrail';
          console.error(
            `iommutrail: tokens from ${tokensFilePath(config.dataDir)} (kept hashed: a lost token cannot be shown again); to get one: ` +
              `${cli} token create --role read --data-dir ${config.dataDir} (queries and dashboard; --role admin for everything), then restart`,
          );
        }
        console.error(`iommutrail: listening on ${service.url} (API reference: ${service.url}/docs, dashboard: ${service.url}/dashboard)`);
        await new Promise<void>((resolve) => {
          const stop = (signal: string) => {
            void service.shutdown(signal).then(resolve);
          };
          process.once('SIGTERM', () => stop('SIGTERM'));
          process.once('SIGINT', () => stop('SIGINT'));
        });
        return EXIT.ok;
      }),
    );
};
