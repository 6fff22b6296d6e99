import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ValidationError } from '../../../schemas/index.js';
import { TokenListSchema, toSettingIssues, type Role, type TokenConfig } from './config.js';

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

export const tokensFilePath = (dataDir: string): string => path.join(dataDir, 'tokens.json');

/** how to get a token when none is at hand: said wherever the operator may be stuck without one */
export const tokenCreateHint = (dataDir: string): string => `iommutrail token create --role admin --data-dir ${dataDir}`;

/**
 * The tokens of `<dataDir>/tokens.json`, validated like the config's `auth.tokens`: a ValidationError names the
 * file and the field (exit 2), and a file with no token is refused, since a service nobody can call is no service.
 * `undefined` when the file does not exist.
 */
export const readTokensFile = (dataDir: string): TokenConfig[] | undefined => {
  const file = tokensFilePath(dataDir);
  if (!existsSync(file)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ValidationError(`${file}: not valid JSON (${(e as Error).message})`, [{ path: file, message: 'not valid JSON' }]);
  }
  const parsed = TokenListSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = toSettingIssues(file, parsed.error);
    throw new ValidationError(`${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  if (parsed.data.length === 0) {
    throw new ValidationError(`${file}: no token in it, so nobody could call the service; add one with \`${tokenCreateHint(dataDir)}\``, [
      { path: file, message: 'no token' },
    ]);
  }
  return parsed.data;
};

/** writes the whole list (hashes only) readable by the owner alone; a crash leaves the old file or the new one */
export const writeTokensFile = (dataDir: string, tokens: readonly TokenConfig[]): void => {
  mkdirSync(dataDir, { recursive: true });
  const file = tokensFilePath(dataDir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(tokens, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
};

/**
 * With no token configured, the tokens of <dataDir>/tokens.json; on the first start (no file) an admin token
 * is minted, only its hash kept in the file, and the clear token returned once to be shown to the operator.
 */
export const bootstrapTokens = (dataDir: string, configured: readonly TokenConfig[]): { tokens: TokenConfig[]; minted?: string } => {
  if (configured.length > 0) return { tokens: [...configured] };
  const fromFile = readTokensFile(dataDir);
  if (fromFile) return { tokens: fromFile };
  const minted = mintToken();
  const tokens: TokenConfig[] = [{ name: 'bootstrap-admin', sha256: hashToken(minted), roles: ['admin', 'ingest', 'read'] }];
  writeTokensFile(dataDir, tokens);
  return { tokens, minted };
};

/**
 * Adds a new token with the given roles to <dataDir>/tokens.json and returns it in clear, once. The name defaults
 * to the roles and a number; a name already there is refused. Name and roles come validated (TokenSchema's).
 */
export const createToken = (dataDir: string, roles: readonly Role[], name?: string): { name: string; token: string; file: string } => {
  const tokens = readTokensFile(dataDir) ?? [];
  const names = new Set(tokens.map((t) => t.name));
  let chosen = name;
  for (let n = tokens.length + 1; chosen === undefined || (name === undefined && names.has(chosen)); n++) chosen = `${roles.join('+')}-${n}`;
  if (names.has(chosen)) throw new ValidationError(`--name: a token named ${JSON.stringify(chosen)} is already in ${tokensFilePath(dataDir)}`, [{ path: '--name', message: 'already exists' }]);
  const token = mintToken();
  writeTokensFile(dataDir, [...tokens, { name: chosen, sha256: hashToken(token), roles: [...new Set(roles)] }]);
  return { name: chosen, token, file: tokensFilePath(dataDir) };
};
