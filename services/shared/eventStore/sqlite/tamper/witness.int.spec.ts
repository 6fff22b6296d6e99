import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEventBuilder, hostStreamName } from '../../../../../schemas/index.js';
import { getSqliteEventStore } from '../sqliteEventStore.js';
import { openCheckpoint, parseVerifierKey, signCheckpoint } from '../../format/checkpoint.js';
import { loadSigningKeys, PUBLIC_KEY_FILE, readPublicKey } from './signing.js';
import { latestCheckpoint, logOrigin, openTlog, storedRoot, storedTreeSize } from './tlogStore.js';
import { createWitness, witnessStoreCheckpoint, type Witness } from './witness.js';
import { verifySqliteStore } from './verifyStore.js';

let dir: string;
let path: string;
const builder = createEventBuilder({ host: 'node-a' });

const appendAndClose = async (count: number): Promise<void> => {
  const store = getSqliteEventStore({ path, writer: 'inline', durability: 'normal', sealIntervalMs: 3_600_000 });
  await store.appendToStream(hostStreamName('node-a'), Array.from({ length: count }, (_, i) => builder.event('DriverBound', { device: `0000:0${i % 8}:00.0`, driver: 'vfio-pci' })));
  await store.close();
};
const db = (): Database.Database => {
  const d = new Database(path);
  d.defaultSafeIntegers(true);
  return d;
};
const witnessStore = (w: Witness) => {
  const d = db();
  try {
    return witnessStoreCheckpoint(d, w);
  } finally {
    d.close();
  }
};
const newWitness = (): Witness => {
  const d = db();
  const origin = logOrigin(d)!;
  d.close();
  return createWitness({ statePath: join(dir, 'witness', 'state.json'), keyPath: join(dir, 'witness', 'witness.key'), name: 'witness.test', log: { origin, publicKey: readPublicKey(join(dir, PUBLIC_KEY_FILE)) } });
};
/** an attacker who holds the log's private key signs a checkpoint of whatever the store now holds */
const resignAsKeyHolder = (): void => {
  const d = db();
  try {
    d.prepare('DELETE FROM tlog_hashes').run();
    openTlog(d);
    const size = storedTreeSize(d);
    const origin = logOrigin(d)!;
    const keys = loadSigningKeys(dir, { mayMint: false });
    d.prepare('DELETE FROM tlog_checkpoints').run();
    d.prepare('INSERT INTO tlog_checkpoints (size, note) VALUES (?, ?)').run(size, signCheckpoint({ origin, size, root: storedRoot(d, size) }, { name: origin, ...keys }));
  } finally {
    d.close();
  }
};

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'iommutrail-witness-'));
  path = join(dir, 'events.sqlite');
  await appendAndClose(10);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('witness', () => {
  it('given a growing log, when the witness sees each checkpoint with its consistency proof, then it cosigns each and keeps its state', async () => {
    const w = newWitness();
    expect(witnessStore(w)).toMatchObject({ ok: true, size: 10 });
    await appendAndClose(5);
    const r = witnessStore(w);
    expect(r).toMatchObject({ ok: true, size: 15 });
    // the cosignature verifies under the witness's own key
    expect(r.ok && openCheckpoint(r.cosigned, [parseVerifierKey(w.verifierKey)!]).ok).toBe(true);
    // a new process reads the same state
    expect(newWitness().state()?.last?.size).toBe(15);
  });

  it('witness #1: a log truncated and re-signed by someone holding its private key is refused as truncated', async () => {
    const w = newWitness();
    await appendAndClose(5);
    expect(witnessStore(w)).toMatchObject({ ok: true, size: 15 });
    const d = db();
    d.prepare('DELETE FROM events WHERE position > 12').run();
    d.close();
    resignAsKeyHolder();
    expect(witnessStore(w)).toMatchObject({ ok: false, refusal: 'truncated', reason: expect.stringMatching(/claims 12 leaves, but this witness cosigned 15/) });
  });

  it('witness #2: a fork (an event rewritten, the tree rebuilt and re-signed by the key holder, then grown) is refused, and verify names the cosigned checkpoint the store contradicts', async () => {
    const w = newWitness();
    const first = witnessStore(w);
    expect(first.ok).toBe(true);
    const d = db();
    d.prepare("UPDATE events SET json = replace(json, 'vfio-pci', 'nouveau') WHERE position = 4").run();
    d.close();
    await appendAndClose(5);
    resignAsKeyHolder();
    expect(witnessStore(w)).toMatchObject({ ok: false, refusal: 'fork', reason: expect.stringMatching(/no valid consistency proof from the checkpoint this witness cosigned \(size 10\)/) });
    const ro = new Database(path, { readonly: true });
    ro.defaultSafeIntegers(true);
    const report = verifySqliteStore(ro, readPublicKey(join(dir, PUBLIC_KEY_FILE)), { external: [{ label: 'witness-cosigned.note', note: first.ok ? first.cosigned : '' }] });
    ro.close();
    expect(report.findings.map((f) => f.message).join('\n')).toMatch(/the store contradicts checkpoint witness-cosigned\.note \(size 10\)/);
  });

  it('given a checkpoint edited after signing, when submitted, then the witness refuses it as a bad checkpoint', () => {
    const w = newWitness();
    const d = db();
    const note = latestCheckpoint(d)!.note.replace('\n10\n', '\n11\n');
    d.close();
    expect(w.submit(note, [])).toMatchObject({ ok: false, refusal: 'bad-checkpoint' });
  });

  it("given a witness whose key file was deleted after it cosigned, when it starts, then it refuses to mint a new key", () => {
    const w = newWitness();
    expect(witnessStore(w).ok).toBe(true);
    rmSync(join(dir, 'witness', 'witness.key'));
    expect(() => newWitness()).toThrow(/witness's key is missing but its state .* exists/);
  });
});
