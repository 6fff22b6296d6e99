import type { AppendConflict, ExpectedRevision } from '../eventStore.js';
import type { MembershipChange } from '../indexKeys.js';
import { HASH_BYTES } from '../format/chain.js';
import type { AppendReply, AppendRequest, WireError } from './sqliteWriter.js';

/*
 * The writer's wire format (issue 23): a batch of appends crosses the thread boundary as one request and comes
 * back as one reply, a few strings and typed arrays whatever the number of streams in it. Sent as an array of
 * one object per append (as before), a batch over 1,000 hosts was 1,000 objects and their hash buffers cloned
 * on the way there and 1,000 replies on the way back. Strings are concatenated with their lengths alongside,
 * so no character is reserved as a separator. The writer unpacks into its own AppendRequest views.
 */

/** an expected revision as a number: a revision (≥ 0), or one of these */
const ANY = -1n;
const NO_STREAM = -2n;
/** a chain's first revision when the append carries no guessed chain */
const NO_CHAIN = -1n;
/** hostChars of an append whose events each name their host (listed in eventHosts) */
const PER_EVENT = -1;

export interface PackedBatch {
  /** the appends' stream names, concatenated; streamChars[i] is the length of the i-th */
  readonly streams: string;
  readonly streamChars: Uint32Array;
  /** each append's expected revision: a revision, -1 any, -2 no stream */
  readonly expected: BigInt64Array;
  /** each append's lines ({@link AppendRequest.lines}), concatenated; lineChars[i] is the length of the i-th append's */
  readonly lines: string;
  readonly lineChars: Uint32Array;
  /** each append's number of events */
  readonly counts: Uint32Array;
  /** each append's host, concatenated; hostChars[i] its length, or -1 when its events each name theirs */
  readonly hosts: string;
  readonly hostChars: Int32Array;
  /** for each append whose events each name their host: [append, the hosts] */
  readonly eventHosts: readonly (readonly [number, readonly string[]])[];
  /** per append: its guessed chain's first revision, or -1 when it has none */
  readonly chainFirst: BigInt64Array;
  /** per append: 1 when its guessed chain carries leaf hashes */
  readonly chainLeaves: Uint8Array;
  /** per append, {@link HASH_BYTES} each: its guessed chain's prevHash (zeros without a chain) */
  readonly prevHashes: Uint8Array;
  /** per event, {@link HASH_BYTES} each: the guessed chain hashes, and leaves (zeros where the append has none) */
  readonly hashes: Uint8Array;
  readonly leaves: Uint8Array;
  /** the membership changes: [append, index of the event's line, the change] */
  readonly changes: readonly (readonly [number, number, MembershipChange])[];
}

export interface PackedReplies {
  /** per append: 1 written (or all duplicates), 0 failed (its error in errors) */
  readonly ok: Uint8Array;
  /** per append, 4 each: nextExpectedRevision, lastPosition, firstPosition, firstRevision (0 for a failed one) */
  readonly numbers: BigInt64Array;
  /** per append, {@link HASH_BYTES} each: the stream's head hash after it */
  readonly headHashes: Uint8Array;
  /** the outcomes of every append that did not fail, concatenated: one character per requested event */
  readonly outcomes: string;
  /** per append: the length of its outcomes (0 for a failed one) */
  readonly outcomeChars: Uint32Array;
  /** [append, its conflicts], for the appends that have some */
  readonly conflicts: readonly (readonly [number, readonly AppendConflict[]])[];
  /** [append, its error], for the appends that failed */
  readonly errors: readonly (readonly [number, WireError])[];
}

/** the buffers a packed batch or packed replies own: moved to the other thread, not copied */
export const transferablesOf = (p: PackedBatch | PackedReplies): ArrayBuffer[] =>
  ('counts' in p ? [p.streamChars, p.expected, p.lineChars, p.counts, p.hostChars, p.chainFirst, p.chainLeaves, p.prevHashes, p.hashes, p.leaves] : [p.ok, p.numbers, p.headHashes, p.outcomeChars]).map(
    (a) => a.buffer as ArrayBuffer,
  );

const revisionOf = (e: ExpectedRevision): bigint => (e === 'any' ? ANY : e === 'no_stream' ? NO_STREAM : e);
const expectedOf = (n: bigint): ExpectedRevision => (n === ANY ? 'any' : n === NO_STREAM ? 'no_stream' : n);

export const packBatch = (batch: readonly AppendRequest[]): PackedBatch => {
  const n = batch.length;
  const streamChars = new Uint32Array(n);
  const expected = new BigInt64Array(n);
  const lineChars = new Uint32Array(n);
  const counts = new Uint32Array(n);
  const hostChars = new Int32Array(n);
  const chainFirst = new BigInt64Array(n);
  const chainLeaves = new Uint8Array(n);
  const prevHashes = new Uint8Array(n * HASH_BYTES);
  const eventHosts: [number, readonly string[]][] = [];
  const changes: [number, number, MembershipChange][] = [];
  const streams: string[] = [];
  const lines: string[] = [];
  const hosts: string[] = [];
  let events = 0;
  let anyLeaves = false;
  for (let i = 0; i < n; i++) {
    const r = batch[i]!;
    streams.push(r.stream);
    streamChars[i] = r.stream.length;
    expected[i] = revisionOf(r.expected);
    lines.push(r.lines);
    lineChars[i] = r.lines.length;
    const count = r.lines === '' ? 0 : countLines(r.lines);
    counts[i] = count;
    events += count;
    if (typeof r.hosts === 'string') {
      hosts.push(r.hosts);
      hostChars[i] = r.hosts.length;
    } else {
      hostChars[i] = PER_EVENT;
      eventHosts.push([i, r.hosts]);
    }
    chainFirst[i] = r.chain ? r.chain.firstRevision : NO_CHAIN;
    if (r.chain) prevHashes.set(r.chain.prevHash, i * HASH_BYTES);
    if (r.chain?.leaves) {
      chainLeaves[i] = 1;
      anyLeaves = true;
    }
    for (const [line, change] of r.changes) changes.push([i, line, change]);
  }
  const hashes = new Uint8Array(events * HASH_BYTES);
  const leaves = new Uint8Array(anyLeaves ? events * HASH_BYTES : 0);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const chain = batch[i]!.chain;
    if (chain) {
      hashes.set(chain.hashes, at);
      if (chain.leaves) leaves.set(chain.leaves, at);
    }
    at += counts[i]! * HASH_BYTES;
  }
  return { streams: streams.join(''), streamChars, expected, lines: lines.join(''), lineChars, counts, hosts: hosts.join(''), hostChars, eventHosts, chainFirst, chainLeaves, prevHashes, hashes, leaves, changes };
};

const countLines = (lines: string): number => {
  let count = 1;
  for (let at = lines.indexOf('\n'); at !== -1; at = lines.indexOf('\n', at + 1)) count++;
  return count;
};

/**
 * a string of its own: a slice of a long string may be a view that keeps the whole of it alive, and the writer
 * keeps hosts and streams in its caches long after their batch (a flattened concatenation holds only its own
 * characters)
 */
const own = (s: string): string => `${s} `.slice(0, -1);

/** the writer's side: one AppendRequest per append, viewing the packed buffers (no copy of the hashes) */
export const unpackBatch = (p: PackedBatch): AppendRequest[] => {
  const n = p.counts.length;
  const out = new Array<AppendRequest>(n);
  const perEvent = new Map(p.eventHosts);
  const changesOf = new Map<number, [number, MembershipChange][]>();
  for (const [i, line, change] of p.changes) {
    const list = changesOf.get(i);
    if (list) list.push([line, change]);
    else changesOf.set(i, [[line, change]]);
  }
  let stream = 0;
  let line = 0;
  let host = 0;
  let event = 0;
  for (let i = 0; i < n; i++) {
    const name = own(p.streams.slice(stream, (stream += p.streamChars[i]!)));
    const lines = p.lines.slice(line, (line += p.lineChars[i]!));
    const hostChars = p.hostChars[i]!;
    const hosts = hostChars === PER_EVENT ? perEvent.get(i)! : own(p.hosts.slice(host, (host += hostChars)));
    const count = p.counts[i]!;
    const first = p.chainFirst[i]!;
    const from = event * HASH_BYTES;
    const to = (event += count) * HASH_BYTES;
    const chain =
      first === NO_CHAIN
        ? undefined
        : {
            prevHash: p.prevHashes.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES),
            hashes: p.hashes.subarray(from, to),
            firstRevision: first,
            ...(p.chainLeaves[i] === 1 ? { leaves: p.leaves.subarray(from, to) } : {}),
          };
    out[i] = { stream: name, expected: expectedOf(p.expected[i]!), hosts, lines, changes: changesOf.get(i) ?? [], ...(chain ? { chain } : {}) };
  }
  return out;
};

/** the writer's replies, packed to go back */
export const packReplies = (replies: readonly AppendReply[]): PackedReplies => {
  const n = replies.length;
  const ok = new Uint8Array(n);
  const numbers = new BigInt64Array(n * 4);
  const headHashes = new Uint8Array(n * HASH_BYTES);
  const outcomes: string[] = [];
  const outcomeChars = new Uint32Array(n);
  const conflicts: [number, readonly AppendConflict[]][] = [];
  const errors: [number, WireError][] = [];
  for (let i = 0; i < n; i++) {
    const r = replies[i]!;
    if (!r.ok) {
      errors.push([i, r.error]);
      continue;
    }
    ok[i] = 1;
    numbers[i * 4] = r.nextExpectedRevision;
    numbers[i * 4 + 1] = r.lastPosition;
    numbers[i * 4 + 2] = r.firstPosition;
    numbers[i * 4 + 3] = r.firstRevision;
    headHashes.set(r.headHash, i * HASH_BYTES);
    outcomes.push(r.outcomes);
    outcomeChars[i] = r.outcomes.length;
    if (r.conflicts.length > 0) conflicts.push([i, r.conflicts]);
  }
  return { ok, numbers, headHashes, outcomes: outcomes.join(''), outcomeChars, conflicts, errors };
};

/** the store's side: one AppendReply per append */
export const unpackReplies = (p: PackedReplies): AppendReply[] => {
  const n = p.ok.length;
  const out = new Array<AppendReply>(n);
  const errors = new Map(p.errors);
  const conflicts = new Map(p.conflicts);
  let at = 0;
  for (let i = 0; i < n; i++) {
    if (p.ok[i] !== 1) {
      out[i] = { ok: false, error: errors.get(i) ?? { kind: 'other', message: 'sqlite writer: no reply for this append' } };
      continue;
    }
    out[i] = {
      ok: true,
      nextExpectedRevision: p.numbers[i * 4]!,
      lastPosition: p.numbers[i * 4 + 1]!,
      firstPosition: p.numbers[i * 4 + 2]!,
      firstRevision: p.numbers[i * 4 + 3]!,
      // a copy: the store keeps a stream's head hash, and a view would keep the whole batch's buffer alive
      headHash: p.headHashes.slice(i * HASH_BYTES, (i + 1) * HASH_BYTES),
      outcomes: p.outcomes.slice(at, (at += p.outcomeChars[i]!)),
      conflicts: conflicts.get(i) ?? [],
    };
  }
  return out;
};
