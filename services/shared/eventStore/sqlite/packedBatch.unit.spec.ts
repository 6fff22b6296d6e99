import { describe, expect, it } from 'vitest';
import { HASH_BYTES } from '../format/chain.js';
import { packBatch, packReplies, transferablesOf, unpackBatch, unpackReplies } from './packedBatch.js';
import type { AppendReply, AppendRequest } from './sqliteWriter.js';

/** n hashes of HASH_BYTES, each byte `seed + its index` (wrapping) */
const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n * HASH_BYTES }, (_, i) => (seed + i) % 256);
/** across a thread boundary, with the packed buffers moved as the writer client moves them */
const cross = <T extends Parameters<typeof transferablesOf>[0]>(p: T): T => structuredClone(p, { transfer: transferablesOf(p) });

describe('the writer wire format (issue 23: one request and one reply per batch)', () => {
  it('given appends of every shape, when packed, moved across and unpacked, then the writer sees each request as sent', () => {
    // given: a guessed chain with leaves, one without leaves, none; a host's stream, a stream whose events each
    // name their host; membership changes; the three kinds of expected revision; names with the separators
    // the lines use; an append of no event
    const batch: AppendRequest[] = [
      { stream: 'host-a', expected: 'any', hosts: 'a', lines: 'e1\tT\t1\tk\t{}\ne2\tT\t2\tk\t{}', changes: [[1, { kind: 'set', device: 'd', group: 3 }]], chain: { prevHash: bytes(1, 7), hashes: bytes(2, 9), firstRevision: 4n, leaves: bytes(2, 11) } },
      { stream: 'audit\tx\ny', expected: 'no_stream', hosts: ['h1', 'h\n2'], lines: 'e3\tT\t3\t\t{}\ne4\tT\t4\t\t{}', changes: [] },
      { stream: 'host-b', expected: 0n, hosts: 'b', lines: '', changes: [] },
      { stream: 'host-c', expected: 12n, hosts: 'c', lines: 'e5\tT\t5\tk\t{"a":"\\n"}', changes: [[0, { kind: 'reset', members: [['d', 1]] }]], chain: { prevHash: bytes(1, 1), hashes: bytes(1, 2), firstRevision: 13n } },
    ];
    // when
    const unpacked = unpackBatch(cross(packBatch(batch)));
    // then: every field, the hashes byte for byte
    expect(unpacked.map((r) => ({ ...r, chain: r.chain && { ...r.chain, prevHash: [...r.chain.prevHash], hashes: [...r.chain.hashes], leaves: r.chain.leaves && [...r.chain.leaves] } }))).toEqual(
      batch.map((r) => ({ ...r, chain: r.chain && { ...r.chain, prevHash: [...r.chain.prevHash], hashes: [...r.chain.hashes], leaves: r.chain.leaves && [...r.chain.leaves] } })),
    );
    expect(unpacked[1]!.chain).toBeUndefined();
    expect(unpacked[3]!.chain!.leaves).toBeUndefined();
  });

  it('given replies that appended, found duplicates and conflicts, and failed, when packed and unpacked, then each append gets its own reply back', () => {
    // given
    const stored = { id: 'e9', streamName: 'host-a', revision: 2n, position: 40n, host: 'a', seq: 3 };
    const replies: AppendReply[] = [
      { ok: true, nextExpectedRevision: 6n, lastPosition: 101n, outcomes: 'aa', conflicts: [], headHash: bytes(1, 3), firstPosition: 100n, firstRevision: 5n },
      { ok: false, error: { kind: 'conflict', message: 'stale', conflict: { streamName: 'host-b', expected: '5', actual: '0' } } },
      { ok: true, nextExpectedRevision: -1n, lastPosition: 40n, outcomes: 'dc', conflicts: [{ index: 1, stored }], headHash: bytes(1, 4), firstPosition: 102n, firstRevision: 0n },
      { ok: false, error: { kind: 'unavailable', message: 'disk full', code: 'SQLITE_FULL' } },
    ];
    // when
    const back = unpackReplies(cross(packReplies(replies)));
    // then
    expect(back.map((r) => (r.ok ? { ...r, headHash: [...r.headHash] } : r))).toEqual(replies.map((r) => (r.ok ? { ...r, headHash: [...r.headHash] } : r)));
  });

  it('given a reply unpacked, when its head hash is kept, then it does not hold the whole batch buffer', () => {
    const [reply] = unpackReplies(packReplies([{ ok: true, nextExpectedRevision: 0n, lastPosition: 1n, outcomes: 'a', conflicts: [], headHash: bytes(1, 0), firstPosition: 1n, firstRevision: 0n }]));
    expect(reply?.ok && reply.headHash.buffer.byteLength).toBe(HASH_BYTES);
  });
});
