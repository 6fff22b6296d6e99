import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Role, TokenConfig } from './config.js';

export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/** a new bearer token: 32 random bytes, url-safe, prefixed so it is recognisable in leaked-secret scans */
export const mintToken = (): string => `iot_${randomBytes(32).toString('base64url')}`;

export interface TokenIdentity {
  readonly name: string;
  readonly roles: ReadonlySet<Role>;
}

/** look-up by hash: tokens have 256 bits of entropy, so a hash index is as safe as a constant-time compare */
export const createTokenIndex = (tokens: readonly TokenConfig[]) => {
  const byHash = new Map<string, TokenIdentity>(tokens.map((t) => [t.sha256, { name: t.name, roles: new Set(t.roles) }]));
  return { identify: (token: string): TokenIdentity | undefined => byHash.get(hashToken(token)), size: byHash.size };
};

/**
 * With no token configured, the first start mints an admin token, keeps only its hash in
 * <dataDir>/tokens.json, and returns the clear token once so it can be shown to the operator.
 */
export const bootstrapTokens = (dataDir: string, configured: readonly TokenConfig[]): { tokens: TokenConfig[]; minted?: string } => {
  if (configured.length > 0) return { tokens: [...configured] };
  const file = path.join(dataDir, 'tokens.json');
  if (existsSync(file)) return { tokens: JSON.parse(readFileSync(file, 'utf8')) as TokenConfig[] };
  mkdirSync(dataDir, { recursive: true });
  const minted = mintToken();
  const tokens: TokenConfig[] = [{ name: 'bootstrap-admin', sha256: hashToken(minted), roles: ['admin', 'ingest', 'read'] }];
  writeFileSync(file, `${JSON.stringify(tokens, null, 2)}\n`, { mode: 0o600 });
  return { tokens, minted };
};
