import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bootstrapTokens, createTokenIndex, hashToken } from '../shared/config/tokens.js';
import { runCli } from './testing/runCli.js';

const cli = runCli;

describe('tokens.json and `iommutrail token create`', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'iommutrail-tokens-'));
  let n = 0;
  const dataDirWith = (tokensJson: string): string => {
    const dir = path.join(root, `d${n++}`);
    rmSync(dir, { recursive: true, force: true });
    writeFileSync(path.join(mkdirp(dir), 'tokens.json'), tokensJson);
    return dir;
  };
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const serve = (dir: string) => cli('serve', '--data-dir', dir, '--port', '0', '--no-analytics');

  it('hardening #11: a tokens.json that is not a list of tokens stops serve with exit 2 and one line naming the file and the field', async () => {
    for (const [content, field, problem] of [
      ['{"name":"x"}', '', 'expected array'],
      ['not json at all', '', 'not valid JSON'],
      ['[{"name":"ci","sha256":"abc","roles":["read"]}]', '[0].sha256', 'expected the sha256 of the token as 64 hex digits'],
      [`[{"name":"ci","sha256":"${'a'.repeat(64)}","roles":["root"]}]`, '[0].roles[0]', 'expected one of'],
    ] as const) {
      const dir = dataDirWith(content);
      const r = await serve(dir);
      expect(r.code, content).toBe(2);
      expect(r.err, content).toMatch(new RegExp(`^iommutrail: ${escape(`${path.join(dir, 'tokens.json')}${field}: `)}.*${escape(problem)}`));
      expect(r.err.split('\n'), content).toHaveLength(1);
    }
  });

  it('hardening #11: an empty tokens.json is refused (nobody could call the service), saying how to create a token', async () => {
    const dir = dataDirWith('[]');
    const r = await serve(dir);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${path.join(dir, 'tokens.json')}: no token in it`);
    expect(r.err).toContain(`iommutrail token create --role admin --data-dir ${dir}`);
  });

  it('hardening #11: an upper-case hash in tokens.json is normalised to lower-case, so its token works', () => {
    const token = 'upper-case-hash-token';
    const dir = dataDirWith(JSON.stringify([{ name: 'ops', sha256: hashToken(token).toUpperCase(), roles: ['read'] }]));
    const { tokens } = bootstrapTokens(dir, []);
    expect(createTokenIndex(tokens).identify(token)).toEqual({ name: 'ops', roles: new Set(['read']) });
  });

  it('hardening #11: `token create --role read` adds a usable token to tokens.json and prints it once on stdout', async () => {
    const dir = dataDirWith(JSON.stringify([{ name: 'bootstrap-admin', sha256: hashToken('first'), roles: ['admin'] }]));
    const r = await cli('token', 'create', '--role', 'read', '--name', 'analyst', '--data-dir', dir);
    expect(r.code).toBe(0);
    const token = r.out.trim();
    expect(token).toMatch(/^iot_[A-Za-z0-9_-]{43}$/);
    expect(r.err).toContain('"analyst"');
    expect(r.err).not.toContain(token);
    const file = path.join(dir, 'tokens.json');
    expect(readFileSync(file, 'utf8')).not.toContain(token);
    expect(statSync(file).mode & 0o077).toBe(0);
    const index = createTokenIndex(bootstrapTokens(dir, []).tokens);
    expect(index.identify(token)).toEqual({ name: 'analyst', roles: new Set(['read']) });
    expect(index.identify('first')?.name).toBe('bootstrap-admin');

    // a second token with the same name is refused; an unknown role is named
    expect((await cli('token', 'create', '--role', 'read', '--name', 'analyst', '--data-dir', dir)).code).toBe(2);
    const bad = await cli('token', 'create', '--role', 'read,root', '--data-dir', dir);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--role');
  });

  it('hardening #11, issue 21: a restart (tokens.json already there) tells how to get a read token, since the first banner may be lost', async () => {
    const dir = dataDirWith(JSON.stringify([{ name: 'bootstrap-admin', sha256: hashToken('lost'), roles: ['admin'] }]));
    const child = spawn(process.execPath, ['--import', 'tsx', path.resolve('services/cli/main.ts'), 'serve', '--data-dir', dir, '--port', '0', '--no-analytics'], {
      env: { ...process.env, IOMMUTRAIL_LOG_LEVEL: 'warn', IOMMUTRAIL_TOKENS: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const stderr = await new Promise<string>((resolve, reject) => {
      let err = '';
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('listening on')) resolve(err);
      });
      child.once('exit', (code) => reject(new Error(`serve exited (${code}): ${err}`)));
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    expect(stderr).toContain(`iommutrail token create --role read --data-dir ${dir} (queries and dashboard; --role admin for everything), then restart`);
  });
});

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const mkdirp = (dir: string): string => {
  mkdirSync(dir, { recursive: true });
  return dir;
};
