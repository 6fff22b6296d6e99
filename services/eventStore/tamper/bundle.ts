import type { KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { IllegalStateError, NotFoundError, ValidationError, hostStreamName, parseEventJson } from '../../../schemas/index.js';
import { deviceKey, fileUnderKeys, groupKey } from '../indexKeys.js';
import type { SqliteEventStore } from '../sqlite/sqliteEventStore.js';
import { chainHash, digestOf, fromHex, genesisHash, toHex } from './chain.js';
import { LOOKAHEAD, type VerifyFinding, type VerifyReport } from './findings.js';
import { openSeal, readPublicKey, type SealPayload, type SignedSeal } from './signing.js';

/**
 * An evidence bundle is a folder:
 * - `events.jsonl`: the selected events, one per line, exactly the canonical bytes the chain hashed
 * - `proof.json`: the host stream's chain from the first selected revision to a sealed head. `prevHash` is
 *   the chain hash before the first selected event; `entries` has one item per revision in that range: for
 *   a selected event `{ h }` (the chain hash after it, used only to name the first bad line), for a left-out
 *   event `{ d }` (its 32-byte content digest). Left-out events are thus proved by digest only: their
 *   contents never leave the store. Size: 32 bytes per event between the first selected one and the head.
 * - `seal.json`: the signed checkpoint whose head for this stream is the proof's last revision
 * - `public-key.pem`: the store's key (pin your own copy with `verify --public-key`)
 *
 * The verifier recomputes the chain from `prevHash` through every entry and compares it with the signed
 * head; sha256 being collision resistant, only the original events at their original places can match.
 */
export const EVENTS_FILE = 'events.jsonl';
export const PROOF_FILE = 'proof.json';
export const SEAL_FILE = 'seal.json';
export const KEY_FILE = 'public-key.pem';

const HexSchema = z.string().regex(/^[0-9a-f]{64}$/);
const DecimalSchema = z.string().regex(/^(0|[1-9][0-9]*)$/);
export const ProofSchema = z.strictObject({
  format: z.literal('iommutrail-proof/v1'),
  stream: z.string().min(1),
  host: z.string().min(1),
  selection: z.strictObject({
    group: z.number().int().optional(),
    device: z.string().optional(),
    fromTimeNs: DecimalSchema.optional(),
    toTimeNs: DecimalSchema.optional(),
  }),
  fromRevision: DecimalSchema,
  toRevision: DecimalSchema,
  prevHash: HexSchema,
  /** `p` (the chain hash before a selected event) lets the verifier tell an edited line from an edited digest */
  entries: z.array(z.union([z.strictObject({ h: HexSchema, p: HexSchema.optional() }), z.strictObject({ d: HexSchema })])),
});
export type Proof = z.output<typeof ProofSchema>;

export interface ExportOptions {
  readonly host: string;
  readonly group?: number;
  readonly device?: string;
  readonly fromTimeNs?: bigint;
  readonly toTimeNs?: bigint;
  readonly outDir: string;
}

export interface ExportResult {
  readonly events: number;
  readonly fromRevision: bigint;
  readonly toRevision: bigint;
  readonly outDir: string;
}

/** writes an evidence bundle; seals the store first so the newest selected event is covered */
export const exportBundle = async (store: SqliteEventStore, options: ExportOptions): Promise<ExportResult> => {
  const stream = hostStreamName(options.host);
  const pem = store.publicKeyPem();
  if (pem === undefined) throw new IllegalStateError('the store has no signing key: open it writable with a key folder');
  await store.seal();
  // the selection is made from the hashed bytes of the host's stream, never from the derived index rows or
  // columns: an edited index or time_ns column cannot make an export leave an event out
  const selected = selectFromStream(store, stream, options);
  if (selected.size === 0) throw new NotFoundError(`no events of host ${options.host} match the selection`);
  const first = [...selected].reduce((a, b) => (a < b ? a : b));
  const last = [...selected].reduce((a, b) => (a > b ? a : b));

  // the earliest seal covering the last selected event keeps the proof short
  const seals = store.db.prepare<[], SignedSeal>('SELECT payload, signature FROM seals ORDER BY id').all();
  let chosen: { seal: SignedSeal; revision: bigint; hash: string } | undefined;
  for (const seal of seals) {
    const head = (JSON.parse(seal.payload) as SealPayload).heads.find((h) => h.stream === stream);
    if (head && BigInt(head.revision) >= last) {
      chosen = { seal, revision: BigInt(head.revision), hash: head.hash };
      break;
    }
  }
  if (!chosen) throw new IllegalStateError(`no signed checkpoint covers revision ${last} of ${stream}`);

  const rows = store.db
    .prepare<[string, bigint, bigint], { revision: bigint; json: string; prev_hash: Buffer }>(
      'SELECT revision, json, prev_hash FROM events WHERE stream = ? AND revision BETWEEN ? AND ? ORDER BY revision',
    )
    .iterate(stream, first, chosen.revision);
  const lines: string[] = [];
  const entries: Proof['entries'] = [];
  let prevHash: Buffer | undefined;
  let h: Buffer = Buffer.alloc(0);
  let expect = first;
  for (const row of rows) {
    if (row.revision !== expect) throw new IllegalStateError(`${stream}: revision ${expect} is missing from the store; run verify`);
    if (prevHash === undefined) h = prevHash = row.prev_hash;
    const before = h;
    const d = digestOf(row.json);
    h = chainHash(h, d);
    if (selected.has(row.revision)) {
      lines.push(row.json);
      entries.push({ h: toHex(h), p: toHex(before) });
    } else entries.push({ d: toHex(d) });
    expect += 1n;
  }
  if (toHex(h) !== chosen.hash) throw new IllegalStateError(`${stream}: the stored chain does not match the signed checkpoint; run verify`);

  const proof: Proof = {
    format: 'iommutrail-proof/v1',
    stream,
    host: options.host,
    selection: {
      ...(options.group !== undefined ? { group: options.group } : {}),
      ...(options.device !== undefined ? { device: options.device } : {}),
      ...(options.fromTimeNs !== undefined ? { fromTimeNs: options.fromTimeNs.toString() } : {}),
      ...(options.toTimeNs !== undefined ? { toTimeNs: options.toTimeNs.toString() } : {}),
    },
    fromRevision: first.toString(),
    toRevision: chosen.revision.toString(),
    prevHash: toHex(prevHash!),
    entries,
  };
  mkdirSync(options.outDir, { recursive: true });
  writeFileSync(join(options.outDir, EVENTS_FILE), lines.map((l) => `${l}\n`).join(''));
  writeFileSync(join(options.outDir, PROOF_FILE), `${JSON.stringify(proof)}\n`);
  writeFileSync(join(options.outDir, SEAL_FILE), `${JSON.stringify(chosen.seal, null, 2)}\n`);
  writeFileSync(join(options.outDir, KEY_FILE), pem);
  return { events: lines.length, fromRevision: first, toRevision: chosen.revision, outDir: options.outDir };
};

/** the revisions of the host's stream whose event (parsed from its hashed JSON) matches the selection */
const selectFromStream = (store: SqliteEventStore, stream: string, options: ExportOptions): Set<bigint> => {
  const selected = new Set<bigint>();
  const members = new Map<string, number>();
  const rows = store.db.prepare<[string], { revision: bigint; json: string }>('SELECT revision, json FROM events WHERE stream = ? ORDER BY revision').iterate(stream);
  for (const row of rows) {
    const parsed = parseEventJson(row.json, `${stream} revision ${row.revision}`);
    if (!parsed.ok) throw new IllegalStateError(`${stream} revision ${row.revision}: not a valid event; run verify`);
    const e = parsed.value;
    // the same rule the index follows, so a group selects a device-only event filed under it
    const keys = fileUnderKeys(e, members);
    const t = BigInt(e.time);
    if (options.fromTimeNs !== undefined && t < options.fromTimeNs) continue;
    if (options.toTimeNs !== undefined && t > options.toTimeNs) continue;
    if (options.group !== undefined && !keys.has(groupKey(options.group))) continue;
    if (options.device !== undefined && !keys.has(deviceKey(options.device))) continue;
    selected.add(row.revision);
  }
  return selected;
};

const readJson = (path: string): unknown => {
  if (!existsSync(path)) throw new ValidationError(`${path}: missing from the bundle`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ValidationError(`${path}: not valid JSON (${(e as Error).message})`);
  }
};

/**
 * Checks a bundle on its own (no store): seal signature, proof shape, every line parses as a catalogue event
 * of the host, and the recomputed chain reaches the signed head. Names the first bad line.
 *
 * @param pinnedKey the key you trust; without it the bundle's own key is used and a warning says so
 */
export const verifyBundle = (dir: string, pinnedKey?: KeyObject): VerifyReport => {
  const warnings: string[] = [];
  const key = pinnedKey ?? readPublicKey(join(dir, KEY_FILE));
  if (!pinnedKey) warnings.push("trusting the public key shipped inside the bundle: pin the store's key with --public-key");
  const sealJson = readJson(join(dir, SEAL_FILE));
  const sealParsed = z.strictObject({ payload: z.string(), signature: z.string() }).safeParse(sealJson);
  if (!sealParsed.success) throw new ValidationError(`${SEAL_FILE}: expected {payload, signature}`);
  const proofParsed = ProofSchema.safeParse(readJson(join(dir, PROOF_FILE)));
  if (!proofParsed.success) {
    throw new ValidationError(`${PROOF_FILE}: ${proofParsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const proof = proofParsed.data;
  const eventsPath = join(dir, EVENTS_FILE);
  if (!existsSync(eventsPath)) throw new ValidationError(`${eventsPath}: missing from the bundle`);
  const lines = readFileSync(eventsPath, 'utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  const base = { events: lines.length, streams: 1, seals: 1, warnings };
  const fail = (f: VerifyFinding): VerifyReport => ({ ...base, ok: false, sealedEvents: 0, findings: [f] });

  const opened = openSeal(sealParsed.data, key);
  if (!opened.ok) return fail({ kind: 'seal', message: opened.reason });
  if (lines.length === 0 || !proof.entries.some((e) => 'h' in e)) {
    return fail({ kind: 'removed', stream: proof.stream, message: `an empty bundle proves nothing about its selection (export refuses one): every selected event was removed from ${EVENTS_FILE}` });
  }
  const head = opened.value.heads.find((x) => x.stream === proof.stream);
  if (!head || head.revision !== proof.toRevision) {
    return fail({ kind: 'seal', stream: proof.stream, message: `the signed checkpoint has no head at revision ${proof.toRevision} for ${proof.stream}` });
  }
  if (proof.fromRevision === '0' && proof.prevHash !== toHex(genesisHash(proof.stream))) {
    return fail({ kind: 'modified', stream: proof.stream, revision: 0n, message: 'the proof does not start from the genesis of the stream' });
  }
  const from = BigInt(proof.fromRevision);
  const included = proof.entries.flatMap((e, i) => ('h' in e ? [i] : []));
  const contentDigests = lines.map((l) => digestOf(l));
  let h = fromHex(proof.prevHash);
  let line = 0;
  for (let i = 0; i < proof.entries.length; i++) {
    const entry = proof.entries[i]!;
    const revision = from + BigInt(i);
    if ('d' in entry) {
      h = chainHash(h, fromHex(entry.d));
      continue;
    }
    if (line >= lines.length) {
      return fail({ kind: 'removed', stream: proof.stream, revision, line: line + 1, message: `the event of revision ${revision} is missing from ${EVENTS_FILE}` });
    }
    const next = chainHash(h, contentDigests[line]!);
    if (toHex(next) !== entry.h) {
      const first = lines.indexOf(lines[line]!);
      if (first < line) {
        return fail({ kind: 'duplicated', stream: proof.stream, revision, line: line + 1, eventId: idOf(lines[line]!), message: `line ${line + 1} duplicates line ${first + 1}` });
      }
      // the line is intact against the hash the proof says precedes it: a left-out event's digest before it was edited
      if (entry.p !== undefined && entry.p !== toHex(h) && toHex(chainHash(fromHex(entry.p), contentDigests[line]!)) === entry.h) {
        const prevIncluded = [...included].reverse().find((s) => s < i) ?? -1;
        return fail({
          kind: 'modified',
          stream: proof.stream,
          revision,
          message: `edited digest: the proof's digest of a left-out event between revisions ${from + BigInt(prevIncluded + 1)} and ${revision - 1n} was altered (line ${line + 1} itself is intact)`,
        });
      }
      return fail(classifyLine(proof, lines, contentDigests, line, i, h, revision, included));
    }
    const parsed = parseEventJson(lines[line]!, `${EVENTS_FILE}:${line + 1}`);
    if (!parsed.ok) return fail({ kind: 'invalid', line: line + 1, revision, message: parsed.error.message });
    if (parsed.value.host !== proof.host) return fail({ kind: 'invalid', line: line + 1, revision, message: `event of host ${parsed.value.host}, bundle of ${proof.host}` });
    h = next;
    line += 1;
  }
  if (line < lines.length) {
    return fail({ kind: 'inserted', stream: proof.stream, line: line + 1, eventId: idOf(lines[line]!), message: `line ${line + 1} is not part of the proved chain` });
  }
  if (toHex(h) !== head.hash) {
    return fail({ kind: 'modified', stream: proof.stream, message: 'edited digest: the proof does not reach the signed head: a digest of a left-out event after the last line was altered' });
  }
  return { ...base, ok: true, sealedEvents: lines.length, findings: [] };
};

const idOf = (line: string): string | undefined => {
  try {
    const id = (JSON.parse(line) as { id?: unknown }).id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
};

/** the line that should fill entry `slot` does not chain: tell a reordered, inserted or removed line from an edit */
const classifyLine = (
  proof: Proof,
  lines: readonly string[],
  digests: readonly Buffer[],
  line: number,
  slot: number,
  h: Buffer,
  revision: bigint,
  included: readonly number[],
): VerifyFinding => {
  const at = { stream: proof.stream, revision, line: line + 1, ...(idOf(lines[line]!) ? { eventId: idOf(lines[line]!)! } : {}) };
  const claimed = (proof.entries[slot] as { h: string }).h;
  // the chain hash before each later included slot, trusting the claimed hashes (only to name the line)
  const before = (target: number): Buffer => {
    let x = fromHex(claimed);
    for (let i = slot + 1; i < target; i++) {
      const e = proof.entries[i]!;
      x = 'd' in e ? chainHash(x, fromHex(e.d)) : fromHex(e.h);
    }
    return x;
  };
  const laterSlots = included.filter((s) => s > slot).slice(0, LOOKAHEAD);
  const fitsHere = (l: number): boolean => l < lines.length && toHex(chainHash(h, digests[l]!)) === claimed;
  for (let k = line + 1; k < Math.min(lines.length, line + LOOKAHEAD); k++) {
    if (!fitsHere(k)) continue;
    // a later line belongs here: either this line belongs later (reordered) or it was inserted
    const elsewhere = laterSlots.some((s) => toHex(chainHash(before(s), digests[line]!)) === (proof.entries[s] as { h: string }).h);
    return elsewhere
      ? { kind: 'reordered', ...at, message: `line ${line + 1} is out of order: line ${k + 1} belongs at revision ${revision}` }
      : { kind: 'inserted', ...at, message: `line ${line + 1} is not part of the proved chain` };
  }
  const later = laterSlots.find((s) => toHex(chainHash(before(s), digests[line]!)) === (proof.entries[s] as { h: string }).h);
  if (later !== undefined) {
    return { kind: 'removed', ...at, message: `the event of revision ${revision} is missing: line ${line + 1} belongs at revision ${BigInt(proof.fromRevision) + BigInt(later)}` };
  }
  return { kind: 'modified', ...at, message: `line ${line + 1} was modified: its bytes do not match the proof` };
};
