import type { KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { IllegalStateError, NotFoundError, ValidationError, hostStreamName, parseEventJson, type IommuEvent } from '../../../../../schemas/index.js';
import { deviceKey, fileUnderKeys, groupKey } from '../../indexKeys.js';
import type { SqliteEventStore } from '../sqliteEventStore.js';
import { chainHash, digestOf, fromHex, genesisHash, toHex } from '../../format/chain.js';
import { LOOKAHEAD, type VerifyFinding, type VerifyReport } from './findings.js';
import { inclusionProof, verifyInclusion } from '../../format/merkle.js';
import { openSeal, readPublicKey, sealCovers, type SealPayload, type SignedSeal } from './signing.js';
import { hashReaderOf, latestCheckpoint, LEAF_V1, LEAF_V2, leafFormatOf, logLeafHash, logOrigin, openLogCheckpoint } from './tlogStore.js';

/**
 * An evidence bundle is a folder (format `iommutrail-bundle/v2`; BUNDLE-FORMAT.md is the auditor's spec):
 * - `events.jsonl`: the selected events, one per line, exactly the canonical bytes the chain and the tree hashed
 * - `context.jsonl`: every other event of the host's stream in the covered range, same form. A bundle covers
 *   the host's stream from its first event (revision 0) to its head under the checkpoint, so the verifier
 *   re-applies the selection to every event of the host: one left out of `events.jsonl` that matches the
 *   selection is named. (A digest says nothing about whether its event matched: bundles of format v1, which
 *   proved left-out events by digest, let a selected line be hidden as a digest.)
 * - `proof.json`: one entry per revision 0..head: `{ h, p, position, inclusion }` for a selected event (chain
 *   hash after and before it, its log position, its RFC 9162 inclusion proof against the checkpoint), `{ c }`
 *   for a context event (the chain hash after it, used only to name the first bad line); plus the log's
 *   origin, the tree size and the host's seq range
 * - `checkpoint.note`: the log's signed checkpoint (C2SP signed note) of that tree size
 * - `seal.json`: the signed seal cut with that checkpoint: its head for the host's stream ends the range
 * - `public-key.pem`: the store's key (pin your own copy with `verify --public-key`, and the origin with `--origin`)
 */
export const EVENTS_FILE = 'events.jsonl';
export const CONTEXT_FILE = 'context.jsonl';
export const PROOF_FILE = 'proof.json';
export const SEAL_FILE = 'seal.json';
export const CHECKPOINT_FILE = 'checkpoint.note';
export const KEY_FILE = 'public-key.pem';
export const BUNDLE_FORMAT = 'iommutrail-bundle/v2';

const HexSchema = z.string().regex(/^[0-9a-f]{64}$/);
const Base64HashSchema = z.string().regex(/^[A-Za-z0-9+/]{43}=$/);
const DecimalSchema = z.string().regex(/^(0|[1-9][0-9]*)$/);
const SelectionSchema = z.strictObject({
  group: z.number().int().optional(),
  device: z.string().optional(),
  fromTimeNs: DecimalSchema.optional(),
  toTimeNs: DecimalSchema.optional(),
});
export type BundleSelection = z.output<typeof SelectionSchema>;
const SelectedEntrySchema = z.strictObject({ h: HexSchema, p: HexSchema, position: DecimalSchema, inclusion: z.array(Base64HashSchema).max(64) });
const ContextEntrySchema = z.strictObject({ c: HexSchema });
/** not written by export: parsed so that an entry turned into a bare digest is named, not refused as malformed */
const DigestEntrySchema = z.strictObject({ d: HexSchema });
export const ProofSchema = z.strictObject({
  format: z.literal(BUNDLE_FORMAT, { error: `expected format ${BUNDLE_FORMAT} (a v1 bundle cannot prove that no selected event was left out: export it again)` }),
  stream: z.string().min(1),
  host: z.string().min(1),
  selection: SelectionSchema,
  origin: z.string().min(1),
  /** the log's leaf format (tlogStore.ts); absent in bundles of a log from before v2 leaves: v1 */
  leaf: z.enum([LEAF_V1, LEAF_V2]).optional(),
  treeSize: DecimalSchema,
  range: z.strictObject({ fromRevision: DecimalSchema, toRevision: DecimalSchema, firstSeq: z.number().int(), lastSeq: z.number().int() }),
  entries: z.array(z.union([SelectedEntrySchema, ContextEntrySchema, DigestEntrySchema])),
});
export type Proof = z.output<typeof ProofSchema>;
type SelectedEntry = z.output<typeof SelectedEntrySchema>;

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
  /** events of the host's stream shipped as context (not selected) */
  readonly context: number;
  readonly fromRevision: bigint;
  readonly toRevision: bigint;
  readonly treeSize: number;
  readonly outDir: string;
}

const selectionOf = (options: Pick<ExportOptions, 'group' | 'device' | 'fromTimeNs' | 'toTimeNs'>): BundleSelection => ({
  ...(options.group !== undefined ? { group: options.group } : {}),
  ...(options.device !== undefined ? { device: options.device } : {}),
  ...(options.fromTimeNs !== undefined ? { fromTimeNs: options.fromTimeNs.toString() } : {}),
  ...(options.toTimeNs !== undefined ? { toTimeNs: options.toTimeNs.toString() } : {}),
});

/**
 * The selection as a fold over a host's stream in revision order: the same rule the index follows (a group
 * selects a device-only event filed under it, by the membership the stream's own topology events set), so
 * export and verify decide alike from the hashed bytes alone.
 */
export const createSelectionMatcher = (selection: BundleSelection): ((e: IommuEvent) => boolean) => {
  const members = new Map<string, number>();
  const from = selection.fromTimeNs !== undefined ? BigInt(selection.fromTimeNs) : undefined;
  const to = selection.toTimeNs !== undefined ? BigInt(selection.toTimeNs) : undefined;
  return (e) => {
    const keys = fileUnderKeys(e, members);
    const t = BigInt(e.time);
    if (from !== undefined && t < from) return false;
    if (to !== undefined && t > to) return false;
    if (selection.group !== undefined && !keys.has(groupKey(selection.group))) return false;
    if (selection.device !== undefined && !keys.has(deviceKey(selection.device))) return false;
    return true;
  };
};

/** the newest checkpoint and the seal cut with it (same transaction: the seal's newest head is the tree size) */
const latestSignedPair = (store: SqliteEventStore): { note: string; size: number; seal: SignedSeal; payload: SealPayload } => {
  const checkpoint = latestCheckpoint(store.db);
  const seal = store.db.prepare<[], SignedSeal>('SELECT payload, signature FROM seals ORDER BY id DESC LIMIT 1').get();
  if (!checkpoint || !seal) throw new IllegalStateError('the store has no signed checkpoint: open it writable with a key folder');
  const payload = JSON.parse(seal.payload) as SealPayload;
  const newest = sealCovers(payload);
  if (newest !== BigInt(checkpoint.size)) {
    throw new IllegalStateError(`the newest seal (up to position ${newest}) and checkpoint (size ${checkpoint.size}) were not cut together: another writer is appending, or run verify`);
  }
  return { note: checkpoint.note, size: checkpoint.size, seal, payload };
};

/**
 * Writes an evidence bundle; seals the store first (a seal and a checkpoint in one transaction) so the newest
 * event is covered. The selection is made from the hashed bytes of the host's stream, never from the derived
 * index rows or columns: an edited index or time_ns column cannot make an export leave an event out. An
 * empty selection gives a bundle that proves the emptiness (every event of the host, none selected).
 */
export const exportBundle = async (store: SqliteEventStore, options: ExportOptions): Promise<ExportResult> => {
  const stream = hostStreamName(options.host);
  const pem = store.publicKeyPem();
  if (pem === undefined) throw new IllegalStateError('the store has no signing key: open it writable with a key folder');
  // the host's head is signed in this seal even when it has not moved since an older one (incremental seals)
  await store.seal({ streams: [stream] });
  const signed = latestSignedPair(store);
  const head = signed.payload.heads.find((h) => h.stream === stream);
  if (!head) throw new NotFoundError(`host ${options.host} has no events in the store`);
  const origin = logOrigin(store.db);
  if (origin === undefined) throw new IllegalStateError('the store has no log origin; run verify');
  const last = BigInt(head.revision);
  const selection = selectionOf(options);
  const matches = createSelectionMatcher(selection);
  const read = hashReaderOf(store.db);
  const rows = store.db
    .prepare<[string, bigint], { position: bigint; revision: bigint; json: string }>('SELECT position, revision, json FROM events WHERE stream = ? AND revision <= ? ORDER BY revision')
    .iterate(stream, last);
  const lines: string[] = [];
  const context: string[] = [];
  const entries: Proof['entries'] = [];
  let h = genesisHash(stream);
  let expect = 0n;
  let firstSeq = 0;
  let lastSeq = 0;
  for (const row of rows) {
    if (row.revision !== expect) throw new IllegalStateError(`${stream}: revision ${expect} is missing from the store; run verify`);
    const parsed = parseEventJson(row.json, `${stream} revision ${row.revision}`);
    if (!parsed.ok) throw new IllegalStateError(`${stream} revision ${row.revision}: not a valid event; run verify`);
    if (expect === 0n) firstSeq = parsed.value.seq;
    lastSeq = parsed.value.seq;
    const before = h;
    h = chainHash(h, digestOf(row.json));
    if (matches(parsed.value)) {
      lines.push(row.json);
      const inclusion = inclusionProof(Number(row.position) - 1, signed.size, read).map((x) => x.toString('base64'));
      entries.push({ h: toHex(h), p: toHex(before), position: row.position.toString(), inclusion });
    } else {
      context.push(row.json);
      entries.push({ c: toHex(h) });
    }
    expect += 1n;
  }
  if (expect !== last + 1n || toHex(h) !== head.hash) throw new IllegalStateError(`${stream}: the stored chain does not match the signed seal; run verify`);

  const proof: Proof = {
    format: BUNDLE_FORMAT,
    stream,
    host: options.host,
    selection,
    origin,
    leaf: leafFormatOf(store.db),
    treeSize: signed.size.toString(),
    range: { fromRevision: '0', toRevision: last.toString(), firstSeq, lastSeq },
    entries,
  };
  mkdirSync(options.outDir, { recursive: true });
  const jsonl = (ls: readonly string[]): string => ls.map((l) => `${l}\n`).join('');
  writeFileSync(join(options.outDir, EVENTS_FILE), jsonl(lines));
  writeFileSync(join(options.outDir, CONTEXT_FILE), jsonl(context));
  writeFileSync(join(options.outDir, PROOF_FILE), `${JSON.stringify(proof)}\n`);
  writeFileSync(join(options.outDir, CHECKPOINT_FILE), signed.note);
  writeFileSync(join(options.outDir, SEAL_FILE), `${JSON.stringify(signed.seal, null, 2)}\n`);
  writeFileSync(join(options.outDir, KEY_FILE), pem);
  return { events: lines.length, context: context.length, fromRevision: 0n, toRevision: last, treeSize: signed.size, outDir: options.outDir };
};

const readJson = (path: string): unknown => {
  if (!existsSync(path)) throw new ValidationError(`${path}: missing from the bundle`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ValidationError(`${path}: not valid JSON (${(e as Error).message})`);
  }
};

const readLines = (path: string): string[] => {
  if (!existsSync(path)) throw new ValidationError(`${path}: missing from the bundle`);
  const lines = readFileSync(path, 'utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
};

export interface VerifyBundleOptions {
  /** the store's key you trust; without it the bundle's own key is used and a warning says so */
  readonly publicKey?: KeyObject;
  /** the log origin you trust; without it the bundle's own origin is used and a warning says so */
  readonly origin?: string;
}

/**
 * Checks a bundle on its own (no store), in this order (BUNDLE-FORMAT.md):
 * 1. shapes: `proof.json` parses, every file is there;
 * 2. the checkpoint: signed by the key under the log's origin, and that origin is the pinned one;
 * 3. the seal: signed by the same key, cut with the checkpoint (its newest head is the tree size), with a head
 *    for the host's stream that ends the range; the range starts at the stream's first event;
 * 4. every revision of the range, in order: chained from the stream's genesis with the line's bytes (the
 *    first bad line is named: modified, removed, reordered, inserted, duplicated, or an edited proof hash),
 *    a catalogue event of the host, a selected line matching the selection and included in the log at its
 *    position under the checkpoint (RFC 9162), a context line not matching it (else it was hidden);
 * 5. the chain reaches the sealed head, and no line is left over.
 */
export const verifyBundle = (dir: string, options: VerifyBundleOptions = {}): VerifyReport => {
  const warnings: string[] = [];
  const key = options.publicKey ?? readPublicKey(join(dir, KEY_FILE));
  if (!options.publicKey) warnings.push("trusting the public key shipped inside the bundle: pin the store's key with --public-key");
  const sealParsed = z.strictObject({ payload: z.string(), signature: z.string() }).safeParse(readJson(join(dir, SEAL_FILE)));
  if (!sealParsed.success) throw new ValidationError(`${SEAL_FILE}: expected {payload, signature}`);
  const proofParsed = ProofSchema.safeParse(readJson(join(dir, PROOF_FILE)));
  if (!proofParsed.success) {
    throw new ValidationError(`${PROOF_FILE}: ${proofParsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const proof = proofParsed.data;
  const checkpointPath = join(dir, CHECKPOINT_FILE);
  if (!existsSync(checkpointPath)) throw new ValidationError(`${checkpointPath}: missing from the bundle`);
  const note = readFileSync(checkpointPath, 'utf8');
  const lines = readLines(join(dir, EVENTS_FILE));
  const context = readLines(join(dir, CONTEXT_FILE));
  const base = { events: lines.length, streams: 1, seals: 1, warnings };
  const fail = (f: VerifyFinding): VerifyReport => ({ ...base, ok: false, sealedEvents: 0, findings: [f] });
  const stream = proof.stream;

  // 2. the log's identity: the checkpoint names its origin, the key signs under that name, the pin decides
  if (options.origin !== undefined && proof.origin !== options.origin) {
    return fail({ kind: 'seal', stream, message: `the bundle is signed for log ${proof.origin}, not the log ${options.origin} you pinned` });
  }
  if (options.origin === undefined) warnings.push(`trusting the log origin the bundle names (${proof.origin}): pin it with --origin`);
  const opened = openLogCheckpoint(note, proof.origin, [key]);
  if (!opened.ok) return fail({ kind: 'seal', stream, message: `${CHECKPOINT_FILE}: ${opened.reason}` });
  const checkpoint = opened.value.checkpoint;
  if (String(checkpoint.size) !== proof.treeSize) return fail({ kind: 'seal', stream, message: `${CHECKPOINT_FILE} signs a tree of ${checkpoint.size} leaves, the proof claims ${proof.treeSize}` });

  // 3. the seal ends the range; the range starts at the stream's genesis
  const sealOpened = openSeal(sealParsed.data, key);
  if (!sealOpened.ok) return fail({ kind: 'seal', stream, message: sealOpened.reason });
  const newest = sealCovers(sealOpened.value);
  if (newest !== BigInt(checkpoint.size)) {
    return fail({ kind: 'seal', stream, message: `${SEAL_FILE} (newest head at position ${newest}) was not cut with ${CHECKPOINT_FILE} (tree size ${checkpoint.size})` });
  }
  const head = sealOpened.value.heads.find((x) => x.stream === stream);
  if (!head || head.revision !== proof.range.toRevision) {
    return fail({ kind: 'seal', stream, message: `the signed seal has no head at revision ${proof.range.toRevision} for ${stream}` });
  }
  if (proof.range.fromRevision !== '0' || BigInt(proof.entries.length) !== BigInt(head.revision) + 1n) {
    return fail({
      kind: 'removed',
      stream,
      message: `the proof covers revisions ${proof.range.fromRevision}..${proof.range.toRevision} in ${proof.entries.length} entries: a bundle covers the host's stream from revision 0 to the sealed head ${head.revision}, one entry each`,
    });
  }

  // 4. every revision, in order
  const matches = createSelectionMatcher(proof.selection);
  const included = proof.entries.flatMap((e, i) => ('p' in e ? [i] : []));
  const lineDigests = lines.map((l) => digestOf(l));
  let h = genesisHash(stream);
  let line = 0;
  let ctx = 0;
  let lastPosition = 0n;
  let seq: number | undefined;
  const seqJumps: string[] = [];
  for (let i = 0; i < proof.entries.length; i++) {
    const entry = proof.entries[i]!;
    const revision = BigInt(i);
    if ('d' in entry) {
      return fail({
        kind: 'removed',
        stream,
        revision,
        message: `the event of revision ${revision} is hidden: its proof entry is a bare digest (a bundle carries every event of its range, selected or as context), so a selected line was dropped and replaced`,
      });
    }
    let text: string;
    let where: string;
    if ('c' in entry) {
      if (ctx >= context.length) return fail({ kind: 'removed', stream, revision, message: `the context event of revision ${revision} is missing from ${CONTEXT_FILE}` });
      text = context[ctx]!;
      where = `${CONTEXT_FILE} line ${ctx + 1}`;
      const next = chainHash(h, digestOf(text));
      if (toHex(next) !== entry.c) return fail(classifyContext(proof, context, ctx, i, h, revision));
      h = next;
      ctx += 1;
    } else {
      if (line >= lines.length) {
        return fail({ kind: 'removed', stream, revision, line: line + 1, message: `the event of revision ${revision} is missing from ${EVENTS_FILE}` });
      }
      text = lines[line]!;
      where = `line ${line + 1}`;
      const next = chainHash(h, lineDigests[line]!);
      if (toHex(next) !== entry.h) {
        const first = lines.indexOf(text);
        if (first < line) {
          return fail({ kind: 'duplicated', stream, revision, line: line + 1, eventId: idOf(text), message: `line ${line + 1} duplicates line ${first + 1}` });
        }
        // the line is intact against the hash the proof says precedes it: something before it was altered
        if (entry.p !== toHex(h) && toHex(chainHash(fromHex(entry.p), lineDigests[line]!)) === entry.h) {
          const prevIncluded = [...included].reverse().find((s) => s < i) ?? -1;
          return fail({
            kind: 'modified',
            stream,
            revision,
            message: `edited proof: a context event or its chain hash between revisions ${prevIncluded + 1} and ${revision - 1n} was altered (line ${line + 1} itself is intact)`,
          });
        }
        return fail(classifyLine(proof, lines, lineDigests, line, i, h, revision, included));
      }
      const position = BigInt(entry.position);
      const leaf = logLeafHash(proof.leaf ?? LEAF_V1, position, stream, revision, text);
      if (position <= lastPosition || !verifyInclusion(Number(position) - 1, checkpoint.size, leaf, entry.inclusion.map((x) => Buffer.from(x, 'base64')), checkpoint.root)) {
        return fail({
          kind: 'modified',
          stream,
          revision,
          position,
          line: line + 1,
          eventId: idOf(text),
          message: `line ${line + 1} is not in the log at position ${position} under ${CHECKPOINT_FILE} (size ${checkpoint.size}): its inclusion proof or position was altered`,
        });
      }
      lastPosition = position;
      h = next;
      line += 1;
    }
    const parsed = parseEventJson(text, `${where} (revision ${revision})`);
    if (!parsed.ok) return fail({ kind: 'invalid', stream, revision, message: parsed.error.message });
    const e = parsed.value;
    if (e.host !== proof.host) return fail({ kind: 'invalid', stream, revision, message: `${where}: event of host ${e.host}, bundle of ${proof.host}` });
    const selected = matches(e);
    if ('c' in entry && selected) {
      return fail({ kind: 'removed', stream, revision, eventId: e.id, message: `the event of revision ${revision} (seq ${e.seq}) matches the selection but is hidden in ${CONTEXT_FILE} (${where})` });
    }
    if ('p' in entry && !selected) {
      return fail({ kind: 'inserted', stream, revision, line: line, eventId: e.id, message: `line ${line} (seq ${e.seq}) does not match the selection` });
    }
    if (i === 0 && e.seq !== proof.range.firstSeq) return fail({ kind: 'modified', stream, message: `the range claims first seq ${proof.range.firstSeq}, revision 0 holds seq ${e.seq}` });
    if (seq !== undefined && e.seq !== seq + 1) seqJumps.push(`${seq}→${e.seq} at revision ${revision}`);
    seq = e.seq;
  }
  if (line < lines.length) {
    return fail({ kind: 'inserted', stream, line: line + 1, eventId: idOf(lines[line]!), message: `line ${line + 1} is not part of the proved chain` });
  }
  if (ctx < context.length) return fail({ kind: 'inserted', stream, message: `${CONTEXT_FILE} line ${ctx + 1} is not part of the proved chain` });
  if (toHex(h) !== head.hash) return fail({ kind: 'modified', stream, message: 'the chain does not reach the sealed head' });
  if (seq !== proof.range.lastSeq) return fail({ kind: 'modified', stream, message: `the range claims last seq ${proof.range.lastSeq}, the sealed head holds seq ${seq}` });
  if (seqJumps.length > 0) {
    warnings.push(`host ${proof.host}'s seqs are not contiguous in the log (${seqJumps.slice(0, 5).join(', ')}${seqJumps.length > 5 ? ', …' : ''}): events the store never received, or received out of order; not tampering`);
  }
  return { ...base, ok: true, sealedEvents: lines.length, findings: [], log: { size: checkpoint.size, signedSize: checkpoint.size, checkpoints: 1 } };
};

const idOf = (line: string): string | undefined => {
  try {
    const id = (JSON.parse(line) as { id?: unknown }).id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
};

/** the chain hash the proof claims after entry `i` (selected or context) */
const claimedAfter = (e: Proof['entries'][number]): string | undefined => ('h' in e ? e.h : 'c' in e ? e.c : undefined);

/** a context line that should fill entry `slot` does not chain: name it */
const classifyContext = (proof: Proof, context: readonly string[], ctx: number, slot: number, h: Buffer, revision: bigint): VerifyFinding => {
  const at = { stream: proof.stream, revision, ...(idOf(context[ctx]!) ? { eventId: idOf(context[ctx]!)! } : {}) };
  const where = `${CONTEXT_FILE} line ${ctx + 1}`;
  const claimed = claimedAfter(proof.entries[slot]!)!;
  const fits = (k: number, from: Buffer, want: string | undefined): boolean => k < context.length && toHex(chainHash(from, digestOf(context[k]!))) === want;
  const first = context.indexOf(context[ctx]!);
  if (first < ctx) return { kind: 'duplicated', ...at, message: `${where} duplicates ${CONTEXT_FILE} line ${first + 1}` };
  if (fits(ctx + 1, h, claimed)) return { kind: 'inserted', ...at, message: `${where} is not part of the proved chain` };
  const next = proof.entries[slot + 1];
  if (next && 'c' in next && fits(ctx, fromHex(claimed), next.c)) return { kind: 'removed', ...at, message: `the context event of revision ${revision} is missing: ${where} belongs at revision ${revision + 1n}` };
  // the line chains on to the next selected entry's claimed predecessor: only the claimed hash was edited
  let x = chainHash(h, digestOf(context[ctx]!));
  for (let s = slot + 1, k = ctx + 1; s < proof.entries.length; s++) {
    const e = proof.entries[s]!;
    if ('p' in e) {
      if (toHex(x) === e.p) return { kind: 'modified', ...at, message: `edited proof: the chain hash given for revision ${revision} was altered (${where} itself is intact)` };
      break;
    }
    if (!('c' in e) || k >= context.length) break;
    x = chainHash(x, digestOf(context[k++]!));
  }
  return { kind: 'modified', ...at, message: `${where} was modified: its bytes do not match the proof` };
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
  const claimed = (proof.entries[slot] as SelectedEntry).h;
  // the chain hash before each later included slot is what the proof claims there (used only to name the line)
  const before = (target: number): Buffer => fromHex((proof.entries[target] as SelectedEntry).p);
  const laterSlots = included.filter((s) => s > slot).slice(0, LOOKAHEAD);
  const fitsHere = (l: number): boolean => l < lines.length && toHex(chainHash(h, digests[l]!)) === claimed;
  const belongsAt = (s: number): boolean => toHex(chainHash(before(s), digests[line]!)) === (proof.entries[s] as SelectedEntry).h;
  for (let k = line + 1; k < Math.min(lines.length, line + LOOKAHEAD); k++) {
    if (!fitsHere(k)) continue;
    // a later line belongs here: either this line belongs later (reordered) or it was inserted
    return laterSlots.some(belongsAt)
      ? { kind: 'reordered', ...at, message: `line ${line + 1} is out of order: line ${k + 1} belongs at revision ${revision}` }
      : { kind: 'inserted', ...at, message: `line ${line + 1} is not part of the proved chain` };
  }
  const later = laterSlots.find(belongsAt);
  if (later !== undefined) {
    return { kind: 'removed', ...at, message: `the event of revision ${revision} is missing: line ${line + 1} belongs at revision ${later}` };
  }
  return { kind: 'modified', ...at, message: `line ${line + 1} was modified: its bytes do not match the proof` };
};
