import type { KeyObject } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import { parseEventJson } from '../../../../../schemas/index.js';
import { chainHash, digestOf, genesisHash, toHex } from '../../format/chain.js';
import { LOOKAHEAD, type VerifyFinding, type VerifyReport } from './findings.js';
import { keyIdOf, openSeal, sealHashOf, type SealPayload } from './signing.js';
import { verifyTlog, type VerifyTlogOptions } from './tlogVerify.js';

interface Row {
  position: bigint;
  id: string;
  revision: bigint;
  json: string;
  prev_hash: Buffer;
  hash: Buffer;
}

const PAGE = 1000;

/**
 * Checks every stream's hash chain in a store, and the chains against every signed checkpoint (seal).
 * Each stream is walked in revision order; at its first break the row is classified with a lookahead:
 * - reordered: the row belongs at another place of the chain (its content or its predecessor hash fits there)
 * - inserted: the chain continues past the row from the hash before it
 * - removed: the row is intact but chains from a hash no row has (or a sealed head is missing)
 * - modified: the row's bytes no longer match its hash (or a signed head does not match a rebuilt chain)
 *
 * Then the whole log against its Merkle tree and every signed checkpoint (the store's and `log.external`
 * ones): see {@link verifyTlog}.
 *
 * @param publicKey the key that must have signed the seals (pin it; the data folder's own key proves less)
 * @param log the log's pinned origin, older keys (rotated out) and checkpoints from outside the store
 */
export const verifySqliteStore = (
  db: Database,
  publicKey: KeyObject | undefined,
  log: Omit<VerifyTlogOptions, 'publicKeys'> & { readonly olderKeys?: readonly KeyObject[] } = {},
): VerifyReport => {
  const findings: VerifyFinding[] = [];
  const warnings: string[] = [];
  const sealRows = db.prepare<[], { id: bigint; payload: string; signature: string }>('SELECT id, payload, signature FROM seals ORDER BY id').all();
  const seals: SealPayload[] = [];
  if (publicKey === undefined && sealRows.length > 0) warnings.push('no public key given: seals were not checked');
  if (publicKey !== undefined) {
    const keys = new Map([publicKey, ...(log.olderKeys ?? [])].map((k) => [keyIdOf(k), k]));
    // the hash of the seal stored before, whatever its bytes: an incremental seal names it
    let before: string | null = null;
    for (const s of sealRows) {
      // a seal names its key: a rotated-out key checks the seals it signed
      const named = /"keyId":"([0-9a-f]{64})"/.exec(s.payload)?.[1];
      const opened = openSeal(s, (named !== undefined ? keys.get(named) : undefined) ?? publicKey);
      if (!opened.ok) findings.push({ kind: 'seal', message: `signed checkpoint #${s.id}: ${opened.reason}` });
      // signed by the key, so its heads are genuine and checked, even out of its place
      else seals.push(opened.value);
      if (opened.ok && opened.value.format === 'iommutrail-seal/v2' && opened.value.previous !== before) {
        // the heads it does not list are the replayed ones of the seals before it: a seal missing or moved
        // between them would leave heads unchecked
        findings.push({
          kind: 'seal',
          message: `signed checkpoint #${s.id}: it chains from a seal that is not the one stored before it (${before === null ? 'none is' : `#${sealRows[sealRows.indexOf(s) - 1]!.id} is`}): a seal was removed or reordered`,
        });
      }
      before = sealHashOf(s.payload);
    }
  }
  if (seals.length === 0) warnings.push('no valid signed checkpoint: only the internal consistency of the chains was checked');

  // every sealed head, per stream: revision → expected hash; and the head set after the last seal, replayed
  // (a v1 seal lists every head and starts the set afresh, a v2 seal moves the heads it lists)
  const sealed = new Map<string, Map<bigint, string>>();
  const latestHead = new Map<string, bigint>();
  for (const seal of seals) {
    if (seal.format === 'iommutrail-seal/v1') latestHead.clear();
    for (const h of seal.heads) {
      let m = sealed.get(h.stream);
      if (!m) sealed.set(h.stream, (m = new Map()));
      m.set(BigInt(h.revision), h.hash);
      latestHead.set(h.stream, BigInt(h.revision));
    }
  }

  const streams = new Set(db.prepare<[], { stream: string }>('SELECT DISTINCT stream FROM events').all().map((r) => r.stream));
  for (const s of sealed.keys()) streams.add(s);
  const page = db.prepare<[string, bigint, number], Row>(
    'SELECT position, id, revision, json, prev_hash, hash FROM events WHERE stream = ? AND revision > ? ORDER BY revision LIMIT ?',
  );

  let events = 0;
  let sealedEvents = 0;
  for (const stream of [...streams].sort()) {
    const expectations = sealed.get(stream) ?? new Map<bigint, string>();
    let p = genesisHash(stream);
    let expectRev = 0n;
    let cursor = -1n;
    // recently accepted rows, to name inserted rows
    const window: Row[] = [];
    let finding: VerifyFinding | undefined;
    walk: for (;;) {
      const rows = page.all(stream, cursor, PAGE);
      for (const row of rows) {
        cursor = row.revision;
        events += 1;
        const d = digestOf(row.json);
        const intact = chainHash(row.prev_hash, d).equals(row.hash);
        if (intact && row.prev_hash.equals(p) && row.revision === expectRev) {
          const parsed = parseEventJson(row.json, `position ${row.position}`);
          if (!parsed.ok) {
            finding = { kind: 'invalid', stream, revision: row.revision, position: row.position, eventId: row.id, message: parsed.error.message };
            break walk;
          }
          const want = expectations.get(row.revision);
          if (want !== undefined && want !== toHex(row.hash)) {
            finding = {
              kind: 'modified',
              stream,
              revision: row.revision,
              position: row.position,
              eventId: row.id,
              message: 'the chain up to here does not match the signed checkpoint: history at or before this revision was rewritten',
            };
            break walk;
          }
          p = row.hash;
          expectRev += 1n;
          window.push(row);
          if (window.length > LOOKAHEAD) window.shift();
          continue;
        }
        finding = classify(stream, row, intact, d, p, expectRev, window, page.all(stream, row.revision, LOOKAHEAD));
        break walk;
      }
      if (rows.length < PAGE) break;
    }
    if (!finding) {
      const missing = [...expectations.keys()].filter((r) => r >= expectRev).sort((a, b) => (a < b ? -1 : 1));
      if (missing.length > 0) {
        finding = {
          kind: 'removed',
          stream,
          revision: expectRev,
          message: `the signed checkpoint covers revision ${missing.at(-1)} but the stream ends at revision ${expectRev - 1n}: events from revision ${expectRev} were removed`,
        };
      }
    }
    if (finding) findings.push(finding);
    const sealedTo = latestHead.get(stream) ?? -1n;
    const covered = sealedTo + 1n < expectRev ? sealedTo + 1n : expectRev;
    sealedEvents += Number(covered);
    if (!finding && expectRev > covered) warnings.push(`stream ${stream}: ${expectRev - covered} event(s) after the last signed checkpoint are chained but not yet sealed`);
  }
  const tlog = verifyTlog(db, { ...log, publicKeys: publicKey ? [publicKey, ...(log.olderKeys ?? [])] : [] });
  // the chains' findings first (they tell a reordered, inserted or removed event of a stream apart), then the
  // log's (positions, derived columns, checkpoints); each by position, ranges and keys last
  findings.sort(byPosition);
  findings.push(...tlog.findings.sort(byPosition));
  warnings.push(...tlog.warnings);
  return {
    ok: findings.length === 0,
    events,
    streams: streams.size,
    sealedEvents,
    seals: sealRows.length,
    log: { size: tlog.treeSize, signedSize: tlog.signedSize, checkpoints: tlog.checkpoints },
    findings,
    warnings,
  };
};

const byPosition = (a: VerifyFinding, b: VerifyFinding): number =>
  a.position === undefined ? (b.position === undefined ? 0 : 1) : b.position === undefined ? -1 : Number(a.position - b.position);

const classify = (
  stream: string,
  row: Row,
  intact: boolean,
  d: Buffer,
  p: Buffer,
  expectRev: bigint,
  window: readonly Row[],
  ahead: readonly Row[],
): VerifyFinding => {
  const at = { stream, revision: row.revision, position: row.position, eventId: row.id };
  const isIntact = (k: Row): boolean => chainHash(k.prev_hash, digestOf(k.json)).equals(k.hash);
  if (intact) {
    const after = ahead.find((k) => k.hash.equals(row.prev_hash));
    if (after) return { kind: 'reordered', ...at, message: `event stored at revision ${row.revision} belongs after event ${after.id} (stored later, at revision ${after.revision})` };
  } else {
    const slot = ahead.find((k) => chainHash(k.prev_hash, d).equals(k.hash));
    if (slot) return { kind: 'reordered', ...at, message: `the content stored at revision ${row.revision} belongs at revision ${slot.revision}` };
  }
  const resume = ahead.find((k) => k.prev_hash.equals(p) && isIntact(k));
  if (resume) return { kind: 'inserted', ...at, message: `event at revision ${row.revision} is not part of the chain: the chain continues at revision ${resume.revision}` };
  if (intact) {
    const j = window.findIndex((w) => w.hash.equals(row.prev_hash));
    if (j >= 0) {
      const first = window[j + 1]!;
      return {
        kind: 'inserted',
        stream,
        revision: first.revision,
        position: first.position,
        eventId: first.id,
        message: `event at revision ${first.revision} was inserted: revision ${row.revision} chains from revision ${window[j]!.revision}`,
      };
    }
    return {
      kind: 'removed',
      ...at,
      message: `event(s) before revision ${row.revision} were removed: it chains from a hash no stored event has (expected revision ${expectRev} to follow ${toHex(p).slice(0, 12)}…)`,
    };
  }
  return { kind: 'modified', ...at, message: `event at revision ${row.revision} was modified: its bytes do not match its hash` };
};

