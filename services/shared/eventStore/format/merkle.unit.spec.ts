import { describe, expect, it } from 'vitest';
import {
  EMPTY_RANGE,
  appendLeaf,
  borderIndexes,
  consistencyProof,
  inclusionProof,
  leafHash,
  rootOf,
  sizeOfStoredCount,
  storedHashCount,
  treeHash,
  verifyConsistency,
  verifyInclusion,
  type CompactRange,
  type HashReader,
} from './merkle.js';

/** a tree of `n` leaves "leaf-0".."leaf-(n-1)", kept in memory the way the store keeps it */
const build = (n: number) => {
  const stored: Buffer[] = [];
  let range: CompactRange = EMPTY_RANGE;
  const roots: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const r = appendLeaf(range, leafHash(`leaf-${i}`));
    for (const [index, h] of r.stored) {
      expect(index).toBe(stored.length);
      stored.push(h);
    }
    range = r.range;
    roots.push(rootOf(range));
  }
  const read: HashReader = (xs) => xs.map((x) => stored[x] ?? (() => { throw new Error(`hash ${x} missing`); })());
  return { stored, range, roots, read };
};

describe('merkle > RFC 9162 tree', () => {
  it('given the leaves "a", "b", "c", when hashed, then the roots equal the known vectors of Go sumdb/tlog', () => {
    let range: CompactRange = EMPTY_RANGE;
    const roots: string[] = [];
    for (const d of ['a', 'b', 'c']) {
      range = appendLeaf(range, leafHash(d)).range;
      roots.push(rootOf(range).toString('hex'));
    }
    expect(roots).toEqual([
      '022a6979e6dab7aa5ae4c3e5e45f7e977112a7e63593820dbec1ec738a24f93c',
      'b137985ff484fb600db93107c77b0365c80d78f5b429ded0fd97361d077999eb',
      '36642e73c2540ab121e3a6bf9545b0a24982cd830eb13d3cd19de3ce6c021ec1',
    ]);
    expect(rootOf(EMPTY_RANGE).toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('given a tree grown leaf by leaf, when its stored hashes are read back, then every prefix root, border and stored count agree', () => {
    const { stored, roots, read } = build(70);
    for (let size = 1; size <= 70; size++) {
      expect(treeHash(size, read).equals(roots[size - 1]!)).toBe(true);
      expect(storedHashCount(size)).toBeLessThanOrEqual(stored.length);
      expect(sizeOfStoredCount(storedHashCount(size))).toBe(size);
      expect(borderIndexes(size).every((i) => i < storedHashCount(size))).toBe(true);
    }
    expect(storedHashCount(70)).toBe(stored.length);
  });

  it('given every leaf of every tree up to 40 leaves, when an inclusion proof is made, then it verifies, and fails for another leaf, index or root', () => {
    const { roots, read } = build(40);
    for (let size = 1; size <= 40; size++) {
      const root = roots[size - 1]!;
      for (let i = 0; i < size; i++) {
        const proof = inclusionProof(i, size, read);
        expect(verifyInclusion(i, size, leafHash(`leaf-${i}`), proof, root)).toBe(true);
        expect(verifyInclusion(i, size, leafHash(`leaf-x`), proof, root)).toBe(false);
        if (size > 1) expect(verifyInclusion((i + 1) % size, size, leafHash(`leaf-${i}`), proof, root)).toBe(false);
        if (size > 1) expect(verifyInclusion(i, size, leafHash(`leaf-${i}`), proof, roots[size - 2]!)).toBe(false);
        if (proof.length > 0) expect(verifyInclusion(i, size, leafHash(`leaf-${i}`), proof.slice(0, -1), root)).toBe(false);
      }
    }
  });

  it('given every pair of tree sizes up to 40, when a consistency proof is made, then it verifies, and fails against a forked root', () => {
    const { roots, read } = build(40);
    for (let second = 1; second <= 40; second++) {
      for (let first = 1; first <= second; first++) {
        const proof = consistencyProof(first, second, read);
        expect(verifyConsistency(first, second, roots[first - 1]!, roots[second - 1]!, proof)).toBe(true);
        expect(verifyConsistency(first, second, leafHash('forked'), roots[second - 1]!, proof)).toBe(false);
        if (first !== second) expect(verifyConsistency(first, second, roots[first - 1]!, leafHash('forked'), proof)).toBe(false);
        if (proof.length > 0) expect(verifyConsistency(first, second, roots[first - 1]!, roots[second - 1]!, proof.slice(1))).toBe(false);
      }
    }
    expect(verifyConsistency(0, 5, Buffer.alloc(32), roots[4]!, [])).toBe(true);
    expect(() => consistencyProof(6, 5, read)).toThrow(RangeError);
  });
});
