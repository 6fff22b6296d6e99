import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { isAppError } from '../../../../schemas/index.js';
import { threadWriter } from './writerClient.js';
import { packBatch } from './packedBatch.js';

describe('writer thread > failure', () => {
  it('given a writer thread that cannot open its file, when asked anything, then every request fails as unavailable (nothing hangs)', async () => {
    const writer = threadWriter({ path: join(tmpdir(), 'iommutrail-no-such-dir', 'nested', 'events.sqlite'), durability: 'full', keyDir: false, sealIntervalMs: 1000 });
    const ready = await writer.ready().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isAppError(ready) && ready.kind).toBe('unavailable');
    expect((ready as Error).message).toMatch(/sqlite writer thread (failed|exited)/);
    await expect(writer.append(packBatch([]))).rejects.toMatchObject({ kind: 'unavailable' });
    await writer.close();
  });
});
