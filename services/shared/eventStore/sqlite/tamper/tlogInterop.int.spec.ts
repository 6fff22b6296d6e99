import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventBuilder, hostStreamName } from '../../../../../schemas/index.js';
import { getSqliteEventStore } from '../sqliteEventStore.js';
import { exportBundle, verifyBundle } from './bundle.js';
import { signCheckpoint, verifierKeyOf, cosignNote } from '../../format/checkpoint.js';
import { EMPTY_RANGE, appendLeaf, consistencyProof, inclusionProof, leafHash, rootOf, type CompactRange } from '../../format/merkle.js';
import { PUBLIC_KEY_FILE, readPublicKey } from './signing.js';
import { logOrigin } from './tlogStore.js';

/**
 * A second, independent implementation checks ours: Go's golang.org/x/mod/sumdb/tlog and sumdb/note
 * (Debian: golang-go, golang-golang-x-mod-dev; deploy/local/install-test-engines.sh installs them).
 */
let dir: string;
let bin: string;
const go = (request: object): {
  roots: string[];
  inclusion: { accepted: boolean; error?: string; goProof: string[] }[];
  consistency: { accepted: boolean; error?: string; goProof: string[] }[];
  notes: { accepted: boolean; text?: string; error?: string }[];
} => JSON.parse(execFileSync(bin, { input: JSON.stringify(request) }).toString());

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'iommutrail-tlogcheck-'));
  bin = join(dir, 'tlogcheck');
  execFileSync('go', ['build', '-o', bin, '.'], {
    cwd: join(import.meta.dirname, 'testing', 'tlogcheck'),
    env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOCACHE: join(dir, 'cache'), GOFLAGS: '' },
    stdio: 'pipe',
  });
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('transparency log > interoperability with Go sumdb/tlog and sumdb/note', () => {
  const N = 37;
  const data = Array.from({ length: N }, (_, i) => Buffer.from(`iommutrail/leaf/v1\n${i + 1}\nhost-a\n${i}\n{"n":${i}}`));
  const stored: Buffer[] = [];
  const roots: Buffer[] = [];
  let range: CompactRange = EMPTY_RANGE;
  for (const d of data) {
    const r = appendLeaf(range, leafHash(d));
    for (const [, h] of r.stored) stored.push(h);
    range = r.range;
    roots.push(rootOf(range));
  }
  const read = (xs: readonly number[]): Buffer[] => xs.map((x) => stored[x]!);

  it('given the same leaves, when Go builds its tree, then every prefix root is ours, and it accepts our inclusion and consistency proofs, which equal its own', () => {
    const inclusion = [];
    for (let size = 1; size <= N; size += 3) for (let index = 0; index < size; index += 2) inclusion.push({ index, size, proof: inclusionProof(index, size, read).map((h) => h.toString('hex')) });
    const consistency = [];
    for (let second = 1; second <= N; second += 2) for (let first = 1; first <= second; first++) consistency.push({ first, second, proof: consistencyProof(first, second, read).map((h) => h.toString('hex')) });
    const answer = go({ leaves: data.map((d) => d.toString('hex')), inclusion, consistency });
    expect(answer.roots).toEqual(roots.map((r) => r.toString('hex')));
    expect(answer.inclusion.filter((v) => !v.accepted)).toEqual([]);
    expect(answer.consistency.filter((v) => !v.accepted)).toEqual([]);
    expect(answer.inclusion.map((v) => v.goProof)).toEqual(inclusion.map((q) => q.proof));
    expect(answer.consistency.map((v) => v.goProof)).toEqual(consistency.map((q) => q.proof));
  });

  it('given a tampered proof, when Go checks it, then it refuses it too (the comparison can fail)', () => {
    const proof = inclusionProof(5, 20, read).map((h) => h.toString('hex'));
    proof[1] = proof[0]!;
    const answer = go({ leaves: data.map((d) => d.toString('hex')), inclusion: [{ index: 5, size: 20, proof }], consistency: [] });
    expect(answer.inclusion[0]!.accepted).toBe(false);
  });

  it('given our signed checkpoint and a witness cosignature, when Go sumdb/note opens them, then it accepts both signatures and refuses an edited size', () => {
    const log = generateKeyPairSync('ed25519');
    const witness = generateKeyPairSync('ed25519');
    const origin = 'iommutrail.test/log-1';
    const note = signCheckpoint({ origin, size: N, root: roots[N - 1]! }, { name: origin, ...log });
    const cosigned = cosignNote(note, { name: 'witness.test', ...witness });
    const logKey = verifierKeyOf({ name: origin, publicKey: log.publicKey });
    const witnessKey = verifierKeyOf({ name: 'witness.test', publicKey: witness.publicKey });
    const a = go({ verifierKey: logKey, notes: [note, cosigned, note.replace(`\n${N}\n`, `\n${N + 1}\n`)] });
    expect(a.notes[0]).toMatchObject({ accepted: true, text: `${origin}\n${N}\n${roots[N - 1]!.toString('base64')}\n` });
    expect(a.notes[1]!.accepted).toBe(true);
    expect(a.notes[2]!.accepted).toBe(false);
    expect(go({ verifierKey: witnessKey, notes: [cosigned] }).notes[0]!.accepted).toBe(true);
  });
});

describe('evidence bundles > checked by the Go implementation (BUNDLE-FORMAT.md)', () => {
  /** runs `tlogcheck bundle`: its JSON answer */
  const goBundle = (bundle: string, key: string, origin: string): { ok: boolean; error?: string; selected: number; context: number } =>
    JSON.parse(spawnSync(bin, ['bundle', bundle, key, origin]).stdout.toString()) as { ok: boolean; error?: string; selected: number; context: number };

  it('given a bundle exported from a store, when Go checks it, then it accepts its checkpoint, seal, chain and inclusion proofs, and refuses a hidden line, another origin and an altered proof', async () => {
    const data = join(dir, 'bundle-store');
    const store = getSqliteEventStore({ path: join(data, 'events.sqlite'), durability: 'normal', writer: 'inline' });
    const a = createEventBuilder({ host: 'node-a' });
    const b = createEventBuilder({ host: 'node-b' });
    for (let i = 0; i < 6; i++) {
      await store.appendToStream(hostStreamName('node-a'), [a.event('DriverBound', { device: i % 2 ? '0000:01:00.0' : '0000:03:00.0', driver: 'vfio-pci' })]);
      await store.appendToStream(hostStreamName('node-b'), [b.event('DriverBound', { device: '0000:03:00.0', driver: 'vfio-pci' })]);
    }
    const bundle = join(dir, 'bundle');
    await exportBundle(store, { host: 'node-a', device: '0000:03:00.0', outDir: bundle });
    const origin = logOrigin(store.db)!;
    await store.close();
    const key = join(data, PUBLIC_KEY_FILE);
    expect(goBundle(bundle, key, origin)).toEqual({ ok: true, selected: 3, context: 3, treeSize: 12 });

    expect(goBundle(bundle, key, 'iommutrail.example/other')).toMatchObject({ ok: false, error: expect.stringMatching(/not the pinned iommutrail.example\/other/) });

    const proofPath = join(bundle, 'proof.json');
    const original = readFileSync(proofPath, 'utf8');
    const proof = JSON.parse(original) as { entries: Record<string, unknown>[] };
    const k = proof.entries.findIndex((e) => 'p' in e);
    (proof.entries[k]!.inclusion as string[])[0] = Buffer.alloc(32).toString('base64');
    writeFileSync(proofPath, JSON.stringify(proof));
    expect(goBundle(bundle, key, origin)).toMatchObject({ ok: false, error: expect.stringMatching(/not in the log at position/) });

    const lines = readFileSync(join(bundle, 'events.jsonl'), 'utf8').trimEnd().split('\n');
    const hidden = JSON.parse(original) as { entries: Record<string, unknown>[] };
    hidden.entries[k] = { d: createHash('sha256').update(lines[0]!).digest('hex') };
    writeFileSync(proofPath, JSON.stringify(hidden));
    writeFileSync(join(bundle, 'events.jsonl'), lines.slice(1).map((l) => `${l}\n`).join(''));
    expect(goBundle(bundle, key, origin)).toMatchObject({ ok: false, error: expect.stringMatching(/bare digest hides one/) });
  });

  it('tamper #18 (bundle): an event of the selection moved out of events.jsonl into context.jsonl (chain intact) is refused by the Go checker as well as by verify, each re-applying the selection', async () => {
    const data = join(dir, 'selection-store');
    const store = getSqliteEventStore({ path: join(data, 'events.sqlite'), durability: 'normal', writer: 'inline' });
    const a = createEventBuilder({ host: 'node-a' });
    // group 12 holds device 0000:03:00.0 from the start, so a device-only event is selected by its group too
    await store.appendToStream(hostStreamName('node-a'), [a.event('DeviceAddedToGroup', { device: '0000:03:00.0', group: 12 })]);
    for (let i = 0; i < 6; i++) await store.appendToStream(hostStreamName('node-a'), [a.event('DriverBound', { device: i % 2 ? '0000:01:00.0' : '0000:03:00.0', driver: 'vfio-pci' })]);
    const bundle = join(dir, 'selection-bundle');
    await exportBundle(store, { host: 'node-a', group: 12, outDir: bundle });
    const origin = logOrigin(store.db)!;
    await store.close();
    const key = join(data, PUBLIC_KEY_FILE);
    const pinned = { publicKey: readPublicKey(key), origin };
    expect(goBundle(bundle, key, origin)).toEqual({ ok: true, selected: 4, context: 3, treeSize: 7 });
    expect(verifyBundle(bundle, pinned).ok).toBe(true);

    // the selected event of revision 3 (a DriverBound of 0000:03:00.0, selected through its group) becomes context
    const proofPath = join(bundle, 'proof.json');
    const proof = JSON.parse(readFileSync(proofPath, 'utf8')) as { entries: ({ h: string } | { c: string })[] };
    const selected = readFileSync(join(bundle, 'events.jsonl'), 'utf8').trimEnd().split('\n');
    const context = readFileSync(join(bundle, 'context.jsonl'), 'utf8').trimEnd().split('\n');
    const slots = proof.entries.flatMap((e, i) => ('h' in e ? [i] : []));
    const k = slots[2]!;
    const before = proof.entries.slice(0, k).filter((e) => 'c' in e).length;
    proof.entries[k] = { c: (proof.entries[k] as { h: string }).h };
    context.splice(before, 0, selected[2]!);
    writeFileSync(proofPath, JSON.stringify(proof));
    writeFileSync(join(bundle, 'context.jsonl'), context.map((l) => `${l}\n`).join(''));
    writeFileSync(join(bundle, 'events.jsonl'), selected.filter((_, i) => i !== 2).map((l) => `${l}\n`).join(''));

    expect(goBundle(bundle, key, origin)).toMatchObject({ ok: false, error: expect.stringMatching(new RegExp(`revision ${k} .*matches the selection but is hidden in context.jsonl`)) });
    const ts = verifyBundle(bundle, pinned);
    expect(ts.ok).toBe(false);
    expect(ts.findings[0]!.message).toMatch(new RegExp(`the event of revision ${k} \\(seq \\d+\\) matches the selection but is hidden in context.jsonl`));
  });
});
