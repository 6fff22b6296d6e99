import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEventBuilder, hostStreamName, isValidationError } from '../../../schemas/index.js';
import { openConfiguredStore } from './openConfiguredStore.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'iommutrail-open-'));
  dirs.push(d);
  return d;
};

describe('the configured store', () => {
  it('given the default configuration, when opened, then it is the SQLite file in the data folder, ready to append', async () => {
    const dataDir = tempDir();
    const store = await openConfiguredStore({ dataDir, store: { kind: 'sqlite', durability: 'normal' } });
    const b = createEventBuilder({ host: 'h' });
    await store.appendToStream(hostStreamName('h'), [b.event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' })]);
    await store.close();
    expect(existsSync(join(dataDir, 'events.sqlite'))).toBe(true);
  });

  it('given eventstoredb without a url, when opened, then a validation error names store.url', async () => {
    const error = await openConfiguredStore({ dataDir: tempDir(), store: { kind: 'eventstoredb', durability: 'full' } }).catch((e: unknown) => e);
    expect(isValidationError(error)).toBe(true);
    expect((error as Error).message).toMatch(/^store\.url: required/);
  });

  it('given eventstoredb configured and a SQLite file named explicitly, when opened, then the file wins', async () => {
    const dir = tempDir();
    const store = await openConfiguredStore({ dataDir: dir, store: { kind: 'eventstoredb', durability: 'normal' } as never }, undefined, join(dir, 'x.sqlite'));
    await store.close();
    expect(existsSync(join(dir, 'x.sqlite'))).toBe(true);
  });
});
