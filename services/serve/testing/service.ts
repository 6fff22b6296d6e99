import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DestinationStream } from 'pino';
import { loadConfig, type ConfigInput } from '../../shared/config/config.js';
import { createLogger } from '../../shared/config/logger.js';
import { hashToken } from '../../shared/config/tokens.js';
import { startService, type RunningService, type ServiceCore, type ServiceExtension } from '../server.js';

export const TEST_TOKENS = { admin: 'test-admin-token', ingest: 'test-ingest-token', read: 'test-read-token' } as const;

export interface TestService extends RunningService {
  readonly dataDir: string;
  /** fetch with a role's token, or none */
  call(pathname: string, init?: RequestInit & { as?: keyof typeof TEST_TOKENS | 'none' }): Promise<Response>;
  /** shuts down and removes the data folder */
  dispose(): Promise<void>;
}

/** a real service on an ephemeral port over a real SQLite file in a fresh temp folder */
export const startTestService = async (
  overrides: ConfigInput = {},
  extensions?: (core: ServiceCore) => Promise<readonly ServiceExtension[]>,
  /** capture the service's log at info level (the production logger, redaction included); silent when absent */
  options: { logTo?: DestinationStream } = {},
): Promise<TestService> => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'iommutrail-svc-'));
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      logLevel: 'silent',
      analytics: { enabled: false },
      ...overrides,
      http: { port: 0, shutdownGraceMs: 2_000, ...overrides.http },
      auth: {
        tokens: [
          { name: 'admin', sha256: hashToken(TEST_TOKENS.admin), roles: ['admin'] },
          { name: 'collector', sha256: hashToken(TEST_TOKENS.ingest), roles: ['ingest'] },
          { name: 'analyst', sha256: hashToken(TEST_TOKENS.read), roles: ['read'] },
        ],
      },
    },
  });
  // the production factory even when silent: a test that turns the log on gets the same redaction
  const logger = createLogger(options.logTo ? { level: 'info', base: { service: 'iommutrail' }, destination: options.logTo } : { level: 'silent' });
  const service = await startService(config, { logger, ...(extensions ? { extensions } : {}) });
  const call = (pathname: string, init: RequestInit & { as?: keyof typeof TEST_TOKENS | 'none' } = {}) => {
    const { as = 'admin', ...rest } = init;
    const headers = new Headers(rest.headers);
    if (as !== 'none') headers.set('authorization', `Bearer ${TEST_TOKENS[as]}`);
    return fetch(`${service.url}${pathname}`, { ...rest, headers });
  };
  return {
    ...service,
    dataDir,
    call,
    dispose: async () => {
      await service.shutdown('test done');
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
};
