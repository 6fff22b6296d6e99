import type { KeyObject } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import type { IommuEvent } from '../../../../../schemas/index.js';
import { fileUnderKeys } from '../../indexKeys.js';
import { digestOf, toHex } from '../../format/chain.js';
import type { VerifyFinding } from './findings.js';
import { borderLevels, HASH_LEN, nodeHashAt, rootOf } from '../../format/merkle.js';
import { LEAF_V1, leafFormatOf, leafV2HasherFor, logLeafHashInto, logOrigin, openLogCheckpoint, storedCheckpoints } from './tlogStore.js';

/** a checkpoint from outside the store (a witness, a bundle, a file), named for the findings */
export interface ExternalCheckpoint {
  readonly label: string;
  readonly note: string;
}

export interface VerifyTlogOptions {
  /** keys that may have signed the store's checkpoints (the current one and rotated-out ones) */
  readonly publicKeys: readonly KeyObject[];
  /** the log's origin you trust; without it the store's own origin is used */
  readonly origin?: string;
  readonly external?: readonly ExternalCheckpoint[];
}

export interface VerifyTlogResult {
  readonly findings: VerifyFinding[];
  readonly warnings: string[];
  readonly events: number;
  readonly treeSize: number;
  /** leaves covered by the latest valid signed checkpoint of the store */
  readonly signedSize: number;
  readonly checkpoints: number;
}

interface Target {
  readonly label: string;
  readonly size: number;
  readonly root: Buffer;
}

interface EventRow {
  position: bigint;
  id: string;
  stream: string;
  revision: bigint;
  type: string;
  time_ns: bigint;
  json: string;
  prev_hash: Buffer;
  hash: Buffer;
}

const PAGE = 2000;

const jsonOf = (json: string): IommuEvent | undefined => {
  try {
    const v = JSON.parse(json) as unknown;
    return typeof v === 'object' && v !== null && 'data' in v && 'host' in v ? (v as IommuEvent) : undefined;
  } catch {
    return undefined;
  }
};

const hasTable = (db: Database, name: string): boolean =>
  db.prepare<[string], { n: bigint | number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?").get(name)!.n > 0;

/** "position 12 (host node-a, seq 7, event 0193…)": how a finding names an event */
const nameOf = (position: bigint, e: IommuEvent | undefined, id: string): string =>
  `position ${position}${e ? ` (host ${e.host}, seq ${e.seq}, event ${e.id})` : ` (event ${id})`}`;

/**
 * Checks the store against its transparency log and every signed checkpoint, its own and the ones given:
 * - every event's leaf (position, stream, revision, canonical JSON) against the stored tree hashes;
 * - the tree's root at each checkpoint's size against the signed root: a rewrite, deletion or fork before a
 *   checkpoint contradicts it, and the finding names that checkpoint and the range it covers;
 * - a checkpoint larger than the store: truncation; events after the last checkpoint: unsigned, a finding;
 * - the columns and tables derived from the hashed JSON (id, type, time_ns, the index rows), since queries
 *   select on them. (A stream's head is its last event since schema v6: nothing apart from the events to edit.)
 */
export const verifyTlog = (db: Database, options: VerifyTlogOptions): VerifyTlogResult => {
  const findings: VerifyFinding[] = [];
  const warnings: string[] = [];
  if (!hasTable(db, 'tlog_hashes')) {
    return { findings, warnings: ['the store has no transparency log yet (opened by an older build): open it writable once to build it'], events: 0, treeSize: 0, signedSize: 0, checkpoints: 0 };
  }
  const storeOrigin = logOrigin(db);
  const origin = options.origin ?? storeOrigin;
  if (options.origin !== undefined && storeOrigin !== options.origin) {
    findings.push({ kind: 'seal', message: `the store names itself log ${storeOrigin ?? '(none)'}, not the log ${options.origin} you pinned` });
  }
  const targets: Target[] = [];
  let signedSize = -1;
  const stored = storedCheckpoints(db);
  if (origin === undefined) findings.push({ kind: 'seal', message: 'the store has no log origin: its transparency-log metadata was deleted' });
  else if (options.publicKeys.length === 0) warnings.push('no public key given: checkpoints were not checked');
  else {
    for (const c of stored) {
      const label = `store checkpoint of size ${c.size}`;
      const opened = openLogCheckpoint(c.note, origin, options.publicKeys);
      if (!opened.ok) findings.push({ kind: 'seal', message: `${label}: ${opened.reason}` });
      else if (opened.value.checkpoint.size !== c.size) findings.push({ kind: 'seal', message: `${label}: the signed note says size ${opened.value.checkpoint.size}` });
      else {
        targets.push({ label, size: c.size, root: opened.value.checkpoint.root });
        signedSize = Math.max(signedSize, c.size);
      }
    }
    for (const x of options.external ?? []) {
      const opened = openLogCheckpoint(x.note, origin, options.publicKeys);
      if (!opened.ok) findings.push({ kind: 'seal', message: `checkpoint ${x.label}: ${opened.reason}` });
      else targets.push({ label: `checkpoint ${x.label} (size ${opened.value.checkpoint.size})`, size: opened.value.checkpoint.size, root: opened.value.checkpoint.root });
    }
  }
  targets.sort((a, b) => a.size - b.size);

  const page = db.prepare<[bigint, number], EventRow>(
    'SELECT position, id, stream, revision, type, time_ns, json, prev_hash, hash FROM events WHERE position > ? ORDER BY position LIMIT ?',
  );
  const tree = treeChecker(db);
  // index rows in position order: the sort holds two integers per row (a join would sort the host and key
  // strings too, and the sort is most of a large store's verify); names come from the small key table
  const keyNames = new Map(db.prepare<[], { id: bigint; host: string; key: string }>('SELECT id, host, key FROM index_keys').all().map((k) => [k.id, k]));
  const indexRows = (function* (): Generator<{ position: bigint; host: string; key: string }> {
    for (const r of db.prepare<[], { position: bigint; key_id: bigint }>('SELECT position, key_id FROM event_index ORDER BY position').iterate()) {
      const k = keyNames.get(r.key_id);
      yield { position: r.position, host: k?.host ?? '(unknown key)', key: k?.key ?? `#${r.key_id}` };
    }
  })();
  let nextIndex = indexRows.next();
  let treeMismatch: VerifyFinding | undefined;
  let t = 0;
  let lastGood = 0;
  const members = new Map<string, Map<string, number>>();
  let cursor = 0n;
  let gap = false;
  let firstUnsigned: { stream: string; revision: bigint; eventId: string; name: string } | undefined;
  walk: for (;;) {
    const rows = page.all(cursor, PAGE);
    for (const row of rows) {
      cursor = row.position;
      const expected = BigInt(tree.size()) + 1n;
      if (row.position !== expected) {
        findings.push({
          kind: 'removed',
          message: `the events at positions ${expected}..${row.position - 1n} were deleted: the log has no gaps`,
        });
        gap = true;
        break walk;
      }
      // the shape is the chains' check (a schema-invalid event is their finding): here the fields are read only
      const e = jsonOf(row.json);
      const at = { position: row.position, stream: row.stream, revision: row.revision, eventId: e?.id ?? row.id };
      // the columns queries select on are derived from the hashed JSON: check each
      if (e) {
        const edited = [
          row.id !== e.id ? `id (${row.id} stored, ${e.id} hashed)` : undefined,
          row.type !== e.type ? `type (${row.type} stored, ${e.type} hashed)` : undefined,
          row.time_ns.toString() !== e.time ? `time_ns (${row.time_ns} stored, ${e.time} hashed)` : undefined,
        ].filter((x) => x !== undefined);
        if (edited.length > 0) findings.push({ kind: 'modified', ...at, message: `edited column ${edited.join(', ')} at ${nameOf(row.position, e, row.id)}: it no longer matches the logged event` });
        // index rows, as the writer files them
        const m = members.get(e.host) ?? new Map<string, number>();
        members.set(e.host, m);
        const want = fileUnderKeys(e, m);
        let have: string[] | undefined;
        let matched = 0;
        let unwanted = false;
        while (!nextIndex.done && nextIndex.value.position <= row.position) {
          const r = nextIndex.value;
          if (r.position < row.position) findings.push({ kind: 'inserted', position: r.position, message: `index row ${r.host} ${r.key} points at position ${r.position}, which holds no event` });
          else {
            const k = r.host === e.host ? r.key : `${r.host}:${r.key}`;
            (have ??= []).push(k);
            if (want.has(k)) matched += 1;
            else unwanted = true;
          }
          nextIndex = indexRows.next();
        }
        // the common case (every wanted row there, nothing else) allocates nothing more
        if (unwanted || matched !== want.size || (have?.length ?? 0) !== matched) {
          const haveSet = new Set(have);
          const missing = [...want].filter((k) => !haveSet.has(k));
          const extra = [...haveSet].filter((k) => !want.has(k));
          findings.push({
            kind: 'modified',
            ...at,
            message: `edited index rows of ${nameOf(row.position, e, row.id)}: ${[missing.length ? `missing ${missing.join(' ')}` : '', extra.length ? `extra ${extra.join(' ')}` : ''].filter(Boolean).join('; ')} (they decide what export --group/--device selects)`,
          });
        }
      }
      if (row.position === BigInt(signedSize + 1)) firstUnsigned = { ...at, name: nameOf(row.position, e, row.id) };
      if (!tree.add(row.position, row.stream, row.revision, row.json) && !treeMismatch) {
        treeMismatch = {
          kind: 'modified',
          ...at,
          message: `${nameOf(row.position, e, row.id)} does not match the transparency log's stored hashes: the event was edited (or its position, stream or revision) after it was logged`,
        };
      }
      while (t < targets.length && targets[t]!.size === tree.size()) {
        const target = targets[t++]!;
        const root = tree.root();
        if (root.equals(target.root)) lastGood = Math.max(lastGood, target.size);
        else {
          findings.push({
            kind: 'modified',
            message: `the store contradicts ${target.label}: its first ${target.size} events hash to root ${toHex(root).slice(0, 16)}…, the checkpoint signed ${toHex(target.root).slice(0, 16)}…: positions ${lastGood + 1}..${target.size} were rewritten, reordered or forked`,
          });
        }
      }
    }
    if (rows.length < PAGE) break;
  }
  if (treeMismatch) findings.push(treeMismatch);
  const events = tree.size();
  if (!gap) {
    if (!treeMismatch && tree.more()) {
      findings.push({ kind: 'removed', message: `the transparency log holds more leaves than the store's ${events} events: events after position ${events} were deleted` });
    }
    for (; t < targets.length; t++) {
      const target = targets[t]!;
      if (target.size > events) {
        findings.push({
          kind: 'removed',
          message: `truncated: ${target.label} covers ${target.size} events, the store holds ${events}: positions ${events + 1}..${target.size} were deleted`,
        });
      }
    }
    while (!nextIndex.done) {
      findings.push({ kind: 'inserted', position: nextIndex.value.position, message: `index row ${nextIndex.value.host} ${nextIndex.value.key} points at position ${nextIndex.value.position}, which holds no event` });
      nextIndex = indexRows.next();
    }
    if (options.publicKeys.length > 0 && origin !== undefined) {
      if (signedSize < 0 && events > 0) {
        findings.push({ kind: 'seal', message: `no signed checkpoint covers the store's ${events} event(s): its checkpoints were deleted (or none was ever cut)` });
      } else if (signedSize >= 0 && events > signedSize) {
        findings.push({
          kind: 'unsigned',
          position: BigInt(signedSize + 1),
          ...(firstUnsigned ? { stream: firstUnsigned.stream, revision: firstUnsigned.revision, eventId: firstUnsigned.eventId } : {}),
          message: `positions ${signedSize + 1}..${events} (${events - signedSize} event(s)) are covered by no signed checkpoint, from ${firstUnsigned?.name ?? `position ${signedSize + 1}`}: appended after the last one, by a writer that stopped before cutting the next, or forged`,
        });
      }
    }
  }
  // a connection with an open iterator prepares nothing
  tree.close();
  indexRows.return(undefined);
  return { findings, warnings, events, treeSize: tree.size(), signedSize: Math.max(0, signedSize), checkpoints: stored.length };
};

/**
 * Rebuilds the tree leaf by leaf (the writer's steps, border kept in one buffer) and compares every hash it
 * makes with the next stored one, read as the stored runs themselves: no object, array or view per hash.
 */
const treeChecker = (db: Database) => {
  const format = leafFormatOf(db);
  const hashers = new Map<string, ReturnType<typeof leafV2HasherFor>>();
  const runs = db.prepare<[], { id: bigint | number; hash: Buffer }>('SELECT id, hash FROM tlog_hashes ORDER BY id').iterate();
  // the stored hashes as one stream: `run` holds the current row, `off` the next hash in it, `index` its number
  let run: Buffer | undefined;
  let off = 0;
  let index = 0;
  let broken = false;
  const nextStored = (): boolean => {
    while (!run || off >= run.length) {
      const r = runs.next();
      if (r.done) return false;
      // a run that does not start where the last one ended breaks the numbering: every later hash mismatches
      if (Number(r.value.id) !== index || r.value.hash.length % HASH_LEN !== 0) broken = true;
      run = r.value.hash;
      off = 0;
    }
    return true;
  };
  const matchesStored = (out: Buffer, at: number): boolean => {
    if (!nextStored()) return false;
    let same = !broken;
    for (let k = 0; same && k < HASH_LEN; k++) same = run![off + k] === out[at + k];
    off += HASH_LEN;
    index += 1;
    return same;
  };
  const border = Buffer.alloc(64 * HASH_LEN);
  const out = Buffer.alloc(65 * HASH_LEN);
  let size = 0;
  return {
    size: () => size,
    /** adds the event's leaf; false when a hash it makes differs from the stored one (or is missing) */
    add: (position: bigint, stream: string, revision: bigint, json: string): boolean => {
      if (format === LEAF_V1) logLeafHashInto(format, position, stream, revision, json, out, 0);
      else {
        let h = hashers.get(stream);
        if (!h) hashers.set(stream, (h = leafV2HasherFor(stream)));
        h(revision, digestOf(json), 0, out, 0);
      }
      let ok = matchesStored(out, 0);
      let at = 0;
      let level = 0;
      for (let s = size; s % 2 === 1; s = (s - 1) / 2) {
        nodeHashAt(border, level * HASH_LEN, out, at, out, at + HASH_LEN);
        at += HASH_LEN;
        level += 1;
        ok = matchesStored(out, at) && ok;
      }
      out.copy(border, level * HASH_LEN, at, at + HASH_LEN);
      size += 1;
      return ok;
    },
    root: (): Buffer => rootOf({ size, border: borderLevels(size).map((l): [number, Buffer] => [l, Buffer.from(border.subarray(l * HASH_LEN, (l + 1) * HASH_LEN))]) }),
    /** stored hashes beyond the rebuilt tree */
    more: (): boolean => nextStored(),
    close: (): void => void runs.return?.(undefined),
  };
};
