import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createEventBuilder, hostStreamName, type IommuEvent } from '../../../schemas/index.js';
import { getSqliteEventStore } from '../../shared/eventStore/sqlite/sqliteEventStore.js';
import { PUBLIC_KEY_FILE } from '../../shared/eventStore/sqlite/tamper/signing.js';
import { EXIT } from '../exitCodes.js';
import { createMain } from '../program.js';
import { registerExport } from './export.js';
import { registerVerify } from './verify.js';

const main = createMain([registerVerify, registerExport]);
let dir: string;
let db: string;
let out: string[];
const HOST = 'node-a';

/** topology (groups 7, 12), then 12 operations alternating between the NIC (group 12) and the GPU (group 7) */
const seed = async (): Promise<IommuEvent[]> => {
  const b = createEventBuilder({ host: HOST, startNs: 1_000_000_000_000n, stepNs: 1_000_000n });
  const events: IommuEvent[] = [
    b.event('TopologySnapshotTaken', {
      capabilities: { iommu: true, interruptRemapping: true },
      groups: [
        { group: 7, devices: ['0000:01:00.0'] },
        { group: 12, devices: ['0000:03:00.0'] },
      ],
      devices: [
        { device: '0000:01:00.0', vendorId: '10de', deviceId: '1eb8', classCode: '030000', driver: 'nouveau', group: 7 },
        { device: '0000:03:00.0', vendorId: '8086', deviceId: '1533', classCode: '020000', driver: null, group: 12 },
      ],
    }),
  ];
  for (let i = 0; i < 12; i++) events.push(b.event('DriverBound', { device: i % 2 ? '0000:01:00.0' : '0000:03:00.0', driver: 'vfio-pci' }));
  const store = getSqliteEventStore({ path: db, durability: 'normal' });
  await store.appendToStream(hostStreamName(HOST), events);
  const other = createEventBuilder({ host: 'node-b' });
  await store.appendToStream(hostStreamName('node-b'), [other.event('DriverBound', { device: '0000:03:00.0', driver: 'vfio-pci' })]);
  await store.close();
  return events;
};

const lines = (bundle: string): string[] => readFileSync(join(bundle, 'events.jsonl'), 'utf8').trimEnd().split('\n');

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'iommutrail-cli-'));
  db = join(dir, 'data', 'events.sqlite');
  out = [];
  vi.spyOn(console, 'log').mockImplementation((s: string) => void out.push(s));
  vi.spyOn(console, 'error').mockImplementation((s: string) => void out.push(s));
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

describe('cli > verify and export', () => {
  it('given an untouched store, when verified, then it exits 0 and says OK', async () => {
    await seed();
    expect(await main(['verify', '--db', db, '--public-key', join(dir, 'data', PUBLIC_KEY_FILE)])).toBe(EXIT.ok);
    expect(out.join('\n')).toMatch(/OK, 14 event\(s\) in 2 stream\(s\), 14 covered/);
  });

  it('tamper #2 (CLI): given a checkpoint kept outside the store and the store truncated behind it, when verified with --checkpoint, then it exits 1 naming that checkpoint', async () => {
    await seed();
    const kept = join(dir, 'witnessed.note');
    const store = new Database(db);
    writeFileSync(kept, (store.prepare('SELECT note FROM tlog_checkpoints ORDER BY size DESC LIMIT 1').get() as { note: string }).note);
    store.exec('DELETE FROM events WHERE position > 10; DELETE FROM tlog_checkpoints; DELETE FROM seals; DELETE FROM tlog_hashes');
    store.close();
    const pinned = join(dir, 'data', PUBLIC_KEY_FILE);
    expect(await main(['verify', '--db', db, '--public-key', pinned, '--checkpoint', kept])).toBe(EXIT.finding);
    expect(out.join('\n')).toMatch(new RegExp(`REMOVED: truncated: checkpoint ${kept.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(size 14\\) covers 14 events, the store holds 10`));
  });

  it('given a store verified against another log origin than the pinned one, when verified, then it exits 1 naming both', async () => {
    await seed();
    expect(await main(['verify', '--db', db, '--public-key', join(dir, 'data', PUBLIC_KEY_FILE), '--origin', 'iommutrail.example/other'])).toBe(EXIT.finding);
    expect(out.join('\n')).toMatch(/names itself log iommutrail\.local\/log-[0-9a-f]{16}, not the log iommutrail\.example\/other you pinned/);
  });

  it('given a missing store, when verified, then it exits 2 like a missing file in every command (issue 21)', async () => {
    expect(await main(['verify', '--db', join(dir, 'nope.sqlite')])).toBe(EXIT.badInput);
  });

  it('given one group in a time range exported, when the bundle is verified elsewhere, then it is clean and holds exactly those events', async () => {
    const events = await seed();
    const bundle = join(dir, 'bundle');
    const from = events[3]!.time;
    const to = events[9]!.time;
    expect(await main(['export', '--db', db, '--host', HOST, '--group', '12', '--from', from, '--to', to, '--out', bundle])).toBe(EXIT.ok);
    const expected = events.filter((e, i) => i >= 3 && i <= 9 && (e.data as { device?: string }).device === '0000:03:00.0');
    expect(lines(bundle).map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(expected.map((e) => e.id));
    // "another machine": the store is gone, only the bundle and the pinned key remain
    const key = readFileSync(join(dir, 'data', PUBLIC_KEY_FILE));
    rmSync(join(dir, 'data'), { recursive: true });
    writeFileSync(join(dir, 'pinned.pem'), key);
    expect(await main(['verify', '--bundle', bundle, '--public-key', join(dir, 'pinned.pem')])).toBe(EXIT.ok);
  });

  const tampered = async (edit: (ls: string[]) => string[]): Promise<string> => {
    await seed();
    const bundle = join(dir, 'bundle');
    expect(await main(['export', '--db', db, '--host', HOST, '--group', '12', '--out', bundle])).toBe(EXIT.ok);
    writeFileSync(join(bundle, 'events.jsonl'), edit(lines(bundle)).map((l) => `${l}\n`).join(''));
    out = [];
    expect(await main(['verify', '--bundle', bundle])).toBe(EXIT.finding);
    return out.join('\n');
  };

  it('given a bundle line edited, when verified, then that line is named as modified', async () => {
    const text = await tampered((ls) => ls.map((l, i) => (i === 3 ? l.replace('vfio-pci', 'nouveau') : l)));
    expect(text).toMatch(/TAMPERED.*first: MODIFIED.*line 4/);
  });

  it('given a bundle line removed, when verified, then the removal is named', async () => {
    const text = await tampered((ls) => ls.filter((_, i) => i !== 2));
    expect(text).toMatch(/first: REMOVED.*line 3/);
  });

  it('given two bundle lines swapped, when verified, then the reordering is named', async () => {
    const text = await tampered((ls) => ls.map((l, i) => (i === 2 ? ls[3]! : i === 3 ? ls[2]! : l)));
    expect(text).toMatch(/first: REORDERED.*line 3/);
  });

  it('given a forged line inserted, when verified, then the insertion is named', async () => {
    const forged = createEventBuilder({ host: HOST, firstSeq: 500 }).event('DriverBound', { device: '0000:03:00.0', driver: 'vfio-pci' });
    const text = await tampered((ls) => [...ls.slice(0, 2), JSON.stringify(forged), ...ls.slice(2)]);
    expect(text).toMatch(/first: INSERTED.*line 3/);
  });

  it('tamper #8 (bundle): a duplicated line is named "duplicated", not reordered', async () => {
    const text = await tampered((ls) => [...ls.slice(0, 3), ls[2]!, ...ls.slice(3)]);
    expect(text).toMatch(/first: DUPLICATED: line 4 duplicates line 3/);
  });

  it('tamper #9 (bundle): a context event\'s chain hash edited in the proof is named "edited proof", not a modified line', async () => {
    await seed();
    const bundle = join(dir, 'bundle');
    expect(await main(['export', '--db', db, '--host', HOST, '--group', '12', '--out', bundle])).toBe(EXIT.ok);
    const proof = JSON.parse(readFileSync(join(bundle, 'proof.json'), 'utf8')) as { entries: ({ c: string } | { h: string })[] };
    const k = proof.entries.findIndex((e, i) => i > 2 && 'c' in e);
    proof.entries[k] = { c: '0'.repeat(64) };
    writeFileSync(join(bundle, 'proof.json'), JSON.stringify(proof));
    out = [];
    expect(await main(['verify', '--bundle', bundle])).toBe(EXIT.finding);
    expect(out.join('\n')).toMatch(new RegExp(`first: MODIFIED: edited proof: the chain hash given for revision ${k} was altered \\(context.jsonl line \\d+ itself is intact\\)`));
  });

  it('tamper #10 (bundle): an emptied bundle (every line dropped, entries turned into digests) is refused; a truly empty selection proves its emptiness', async () => {
    await seed();
    const bundle = join(dir, 'bundle');
    expect(await main(['export', '--db', db, '--host', HOST, '--group', '12', '--out', bundle])).toBe(EXIT.ok);
    const proof = JSON.parse(readFileSync(join(bundle, 'proof.json'), 'utf8')) as { entries: ({ d: string } | { h: string } | { c: string })[] };
    const json = lines(bundle);
    let line = 0;
    proof.entries = proof.entries.map((e) => ('h' in e ? { d: createHash('sha256').update(json[line++]!).digest('hex') } : e));
    writeFileSync(join(bundle, 'proof.json'), JSON.stringify(proof));
    writeFileSync(join(bundle, 'events.jsonl'), '');
    out = [];
    expect(await main(['verify', '--bundle', bundle])).toBe(EXIT.finding);
    expect(out.join('\n')).toMatch(/first: REMOVED: the event of revision \d+ is hidden: its proof entry is a bare digest/);
    const empty = join(dir, 'empty');
    expect(await main(['export', '--db', db, '--host', HOST, '--group', '99', '--out', empty])).toBe(EXIT.ok);
    expect(readFileSync(join(empty, 'events.jsonl'), 'utf8')).toBe('');
    out = [];
    expect(await main(['verify', '--bundle', empty])).toBe(EXIT.ok);
    expect(out.join('\n')).toMatch(/OK, 0 event\(s\)/);
  });

  it('tamper #14 (bundle): a selected event moved into context.jsonl (its entry made a context entry) is named as hidden', async () => {
    await seed();
    const bundle = join(dir, 'bundle');
    expect(await main(['export', '--db', db, '--host', HOST, '--group', '12', '--out', bundle])).toBe(EXIT.ok);
    const proof = JSON.parse(readFileSync(join(bundle, 'proof.json'), 'utf8')) as { entries: ({ h: string } | { c: string })[] };
    const json = lines(bundle);
    const context = readFileSync(join(bundle, 'context.jsonl'), 'utf8').trimEnd().split('\n');
    // the second selected event (revision k) becomes context: the chain stays intact, only the selection says no
    const slots = proof.entries.flatMap((e, i) => ('h' in e ? [i] : []));
    const k = slots[1]!;
    const before = proof.entries.slice(0, k).filter((e) => 'c' in e).length;
    proof.entries[k] = { c: (proof.entries[k] as { h: string }).h };
    context.splice(before, 0, json[1]!);
    writeFileSync(join(bundle, 'proof.json'), JSON.stringify(proof));
    writeFileSync(join(bundle, 'context.jsonl'), context.map((l) => `${l}\n`).join(''));
    writeFileSync(join(bundle, 'events.jsonl'), json.filter((_, i) => i !== 1).map((l) => `${l}\n`).join(''));
    out = [];
    expect(await main(['verify', '--bundle', bundle])).toBe(EXIT.finding);
    expect(out.join('\n')).toMatch(new RegExp(`first: REMOVED: the event of revision ${k} \\(seq \\d+\\) matches the selection but is hidden in context.jsonl`));
  });

  it('tamper #15 (bundle): an altered inclusion proof or position is named: the line is not in the log under the checkpoint', async () => {
    await seed();
    const bundle = join(dir, 'bundle');
    expect(await main(['export', '--db', db, '--host', HOST, '--group', '12', '--out', bundle])).toBe(EXIT.ok);
    const proof = JSON.parse(readFileSync(join(bundle, 'proof.json'), 'utf8')) as { entries: ({ h: string; position: string; inclusion: string[] } | { c: string })[] };
    const k = proof.entries.findIndex((e) => 'h' in e);
    const entry = proof.entries[k] as { position: string };
    entry.position = String(Number(entry.position) + 1);
    writeFileSync(join(bundle, 'proof.json'), JSON.stringify(proof));
    out = [];
    expect(await main(['verify', '--bundle', bundle])).toBe(EXIT.finding);
    expect(out.join('\n')).toMatch(/first: MODIFIED: line 1 is not in the log at position \d+ under checkpoint.note \(size 14\)/);
  });

  it('tamper #11 (bundle): index rows deleted in the store do not make a re-export omit the event (selection comes from the hashed bytes)', async () => {
    const events = await seed();
    const raw = new Database(db);
    raw.prepare("DELETE FROM event_index WHERE key_id IN (SELECT id FROM index_keys WHERE key = 'd:0000:03:00.0')").run();
    raw.prepare("DELETE FROM event_index WHERE position = 3").run();
    raw.close();
    const bundle = join(dir, 'bundle');
    expect(await main(['export', '--db', db, '--host', HOST, '--device', '0000:03:00.0', '--out', bundle])).toBe(EXIT.ok);
    const expected = events.filter((e) => (e.data as { device?: string }).device === '0000:03:00.0' || e.type === 'TopologySnapshotTaken');
    expect(lines(bundle).map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(expected.map((e) => e.id));
  });

  it('tamper #12 (bundle): a selected line dropped and its proof entry turned into a digest no longer verifies, and the hidden revision is named', async () => {
    await seed();
    const bundle = join(dir, 'bundle');
    expect(await main(['export', '--db', db, '--host', HOST, '--group', '12', '--out', bundle])).toBe(EXIT.ok);
    const proof = JSON.parse(readFileSync(join(bundle, 'proof.json'), 'utf8')) as { entries: Record<string, unknown>[] };
    const json = lines(bundle);
    // the third selected line: its entry (the one carrying the chain hash before it) becomes a bare digest
    const slots = proof.entries.flatMap((e, i) => ('p' in e ? [i] : []));
    proof.entries[slots[2]!] = { d: createHash('sha256').update(json[2]!).digest('hex') };
    writeFileSync(join(bundle, 'proof.json'), JSON.stringify(proof));
    writeFileSync(join(bundle, 'events.jsonl'), json.filter((_, i) => i !== 2).map((l) => `${l}\n`).join(''));
    out = [];
    expect(await main(['verify', '--bundle', bundle])).toBe(EXIT.finding);
    expect(out.join('\n')).toMatch(new RegExp(`first: REMOVED: the event of revision ${slots[2]} .*hidden`));
  });

  it('tamper #13 (bundle): verify --bundle --origin refuses a bundle signed for another log origin, naming both', async () => {
    await seed();
    const bundle = join(dir, 'bundle');
    expect(await main(['export', '--db', db, '--host', HOST, '--out', bundle])).toBe(EXIT.ok);
    out = [];
    expect(await main(['verify', '--bundle', bundle, '--origin', 'iommutrail.example/other'])).toBe(EXIT.finding);
    expect(out.join('\n')).toMatch(/SEAL: .*log iommutrail\.local\/log-[0-9a-f]{16}, not the log iommutrail\.example\/other you pinned/);
  });

  it('tamper #17 (bundle): an older genuine seal swapped in beside the checkpoint is refused as not cut with it (an older head could end the range early)', async () => {
    await seed();
    const bundle = join(dir, 'bundle');
    expect(await main(['export', '--db', db, '--host', HOST, '--out', bundle])).toBe(EXIT.ok);
    const store = new Database(db, { readonly: true });
    const oldest = store.prepare('SELECT payload, signature FROM seals ORDER BY id LIMIT 1').get() as { payload: string; signature: string };
    store.close();
    writeFileSync(join(bundle, 'seal.json'), JSON.stringify(oldest));
    out = [];
    expect(await main(['verify', '--bundle', bundle])).toBe(EXIT.finding);
    expect(out.join('\n')).toMatch(/first: SEAL: seal.json \(newest head at position 13\) was not cut with checkpoint.note \(tree size 14\)/);
  });

  it('given a bundle whose key was swapped for another, when verified with the pinned key, then the signature check fails', async () => {
    await seed();
    const bundle = join(dir, 'bundle');
    const pinned = join(dir, 'pinned.pem');
    writeFileSync(pinned, readFileSync(join(dir, 'data', PUBLIC_KEY_FILE)));
    expect(await main(['export', '--db', db, '--host', HOST, '--out', bundle])).toBe(EXIT.ok);
    const seal = JSON.parse(readFileSync(join(bundle, 'seal.json'), 'utf8')) as { payload: string; signature: string };
    writeFileSync(join(bundle, 'seal.json'), JSON.stringify({ ...seal, payload: seal.payload.replace('"revision":"12"', '"revision":"11"') }));
    expect(await main(['verify', '--bundle', bundle, '--public-key', pinned])).toBe(EXIT.finding);
    expect(out.join('\n')).toMatch(/SEAL: bad signature/);
  });

  it('given a bad --from, when exporting, then it exits 2 naming the option', async () => {
    await seed();
    expect(await main(['export', '--db', db, '--host', HOST, '--from', 'yesterday-ish', '--out', join(dir, 'b')])).toBe(EXIT.badInput);
    expect(out.join('\n')).toMatch(/--from/);
  });
});
