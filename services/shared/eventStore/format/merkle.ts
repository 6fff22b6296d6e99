import { hash } from 'node:crypto';

/**
 * RFC 9162 (Certificate Transparency v2) Merkle tree hashing, proofs and proof checks, over the whole log.
 *
 * - leaf hash: `SHA-256(0x00 || leaf data)`, interior node: `SHA-256(0x01 || left || right)` (RFC 9162 §2.1.1)
 * - storage: every complete subtree's hash, numbered as Go's `golang.org/x/mod/sumdb/tlog` numbers them
 *   ({@link storedHashIndex}): appending leaf n stores 1 + trailing-ones(n) hashes (about 2 per leaf), and
 *   never rehashes history. The right border ({@link CompactRange}) is all an append needs.
 * - proofs: inclusion (§2.1.3) and consistency (§2.1.4), generated from stored subtree hashes, checked with
 *   the RFC's own algorithms (§2.1.3.2, §2.1.4.2).
 *
 * Tree indexes are numbers: exact to 2^53 leaves, far beyond any store.
 */
export const HASH_LEN = 32;

const LEAF_PREFIX = Buffer.from([0]);
const NODE_PREFIX = Buffer.from([1]);

export const leafHash = (data: string | Uint8Array): Buffer =>
  hash('sha256', Buffer.concat([LEAF_PREFIX, typeof data === 'string' ? Buffer.from(data) : data]), 'buffer');

// one reused 65-byte input: no allocation per node beyond the digest
const nodeInput = Buffer.alloc(1 + 2 * HASH_LEN);
nodeInput[0] = 1;
export const nodeHash = (left: Uint8Array, right: Uint8Array): Buffer => {
  if (left.length !== HASH_LEN || right.length !== HASH_LEN) return hash('sha256', Buffer.concat([NODE_PREFIX, left, right]), 'buffer');
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_LEN);
  return hash('sha256', nodeInput, 'buffer');
};

/** a 'binary' (latin1) digest string copied into `out` at `at`, byte by byte (no view, no native call) */
export const copyBinary = (digest: string, out: Uint8Array, at: number): void => {
  for (let k = 0; k < digest.length; k++) out[at + k] = digest.charCodeAt(k);
};

/**
 * {@link nodeHash} of the 32 bytes of `left` at `lo` and of `right` at `ro`, written into `out` at `at`: the
 * append path's form, with no view or Buffer per hash (each costs about as much as copying 32 bytes by hand)
 */
export const nodeHashAt = (left: Uint8Array, lo: number, right: Uint8Array, ro: number, out: Uint8Array, at: number): void => {
  for (let k = 0; k < HASH_LEN; k++) nodeInput[1 + k] = left[lo + k]!;
  for (let k = 0; k < HASH_LEN; k++) nodeInput[1 + HASH_LEN + k] = right[ro + k]!;
  copyBinary(hash('sha256', nodeInput, 'binary'), out, at);
};

/** the hash of the empty tree: SHA-256 of nothing */
export const EMPTY_ROOT = hash('sha256', Buffer.alloc(0), 'buffer');

/** where the hash of subtree `n` of height `level` (leaves n·2^level .. (n+1)·2^level − 1) is stored (Go tlog's numbering) */
export const storedHashIndex = (level: number, n: number): number => {
  for (let l = level; l > 0; l--) n = 2 * n + 1;
  let i = 0;
  for (; n > 0; n = Math.floor(n / 2)) i += n;
  return i + level;
};

/** how many hashes a tree of `size` leaves stores */
export const storedHashCount = (size: number): number => {
  if (size === 0) return 0;
  let count = storedHashIndex(0, size - 1) + 1;
  for (let i = size - 1; i % 2 === 1; i = Math.floor(i / 2)) count++;
  return count;
};

/** the tree size whose stored hash count is `count`, or undefined when no size has exactly that many */
export const sizeOfStoredCount = (count: number): number | undefined => {
  let lo = 0;
  let hi = Math.max(1, count);
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (storedHashCount(mid) < count) lo = mid + 1;
    else hi = mid;
  }
  return storedHashCount(lo) === count ? lo : undefined;
};

/**
 * The right border of a tree: the hashes of its maximal complete subtrees, largest first (one per set bit of
 * the size). Enough to append and to compute the root.
 */
export interface CompactRange {
  readonly size: number;
  /** [level, hash], levels strictly decreasing */
  readonly border: readonly (readonly [number, Buffer])[];
}

export const EMPTY_RANGE: CompactRange = { size: 0, border: [] };

/** the levels of the complete subtrees that make up a tree of `size` leaves, largest first */
export const borderLevels = (size: number): number[] => {
  const levels: number[] = [];
  for (let l = Math.floor(Math.log2(Math.max(1, size))) + 1; l >= 0; l--) if (Math.floor(size / 2 ** l) % 2 === 1) levels.push(l);
  return levels;
};

/** the stored index of each border subtree of a tree of `size` leaves, in {@link borderLevels} order */
export const borderIndexes = (size: number): number[] => {
  let start = 0;
  return borderLevels(size).map((l) => {
    const i = storedHashIndex(l, start / 2 ** l);
    start += 2 ** l;
    return i;
  });
};

/**
 * Appends one leaf hash. Returns the new range and the hashes to store, as [stored index, hash] (the leaf
 * first, then each subtree it completes).
 */
export const appendLeaf = (range: CompactRange, leaf: Buffer): { range: CompactRange; stored: [number, Buffer][] } => {
  const n = range.size;
  const border = range.border.slice();
  const stored: [number, Buffer][] = [[storedHashIndex(0, n), leaf]];
  let h = leaf;
  let level = 0;
  while (border.length > 0 && border[border.length - 1]![0] === level) {
    h = nodeHash(border.pop()![1], h);
    level += 1;
    stored.push([storedHashIndex(level, Math.floor(n / 2 ** level)), h]);
  }
  border.push([level, h]);
  return { range: { size: n + 1, border }, stored };
};

/** MTH of the whole tree (RFC 9162 §2.1.1) */
export const rootOf = (range: CompactRange): Buffer => {
  if (range.border.length === 0) return EMPTY_ROOT;
  let h = range.border[range.border.length - 1]![1];
  for (let i = range.border.length - 2; i >= 0; i--) h = nodeHash(range.border[i]![1], h);
  return h;
};

/** reads stored subtree hashes by {@link storedHashIndex}; throws when one is missing */
export type HashReader = (indexes: readonly number[]) => Buffer[];

const largestPow2Below = (n: number): number => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};

type Span = readonly [lo: number, hi: number];

/** the stored indexes of the complete aligned subtrees that make up leaves [lo, hi), left to right */
const spanIndexes = ([lo, hi]: Span): number[] => {
  const indexes: number[] = [];
  let at = lo;
  while (at < hi) {
    let level = 0;
    while (at % 2 ** (level + 1) === 0 && at + 2 ** (level + 1) <= hi) level++;
    indexes.push(storedHashIndex(level, at / 2 ** level));
    at += 2 ** level;
  }
  return indexes;
};

/** MTH of each span: its subtrees folded right to left; one read for all of them */
const spanHashes = (spans: readonly Span[], read: HashReader): Buffer[] => {
  const perSpan = spans.map(spanIndexes);
  const hashes = read(perSpan.flat());
  let at = 0;
  return perSpan.map((indexes) => {
    const mine = hashes.slice(at, (at += indexes.length));
    let h = mine[mine.length - 1]!;
    for (let i = mine.length - 2; i >= 0; i--) h = nodeHash(mine[i]!, h);
    return h;
  });
};

/** MTH of the first `size` leaves, from stored hashes */
export const treeHash = (size: number, read: HashReader): Buffer => (size === 0 ? EMPTY_ROOT : spanHashes([[0, size]], read)[0]!);

/** RFC 9162 §2.1.3.1 PATH(m, D[0:n]): the audit path of leaf `index` in a tree of `size` leaves */
export const inclusionProof = (index: number, size: number, read: HashReader): Buffer[] => {
  if (!(index >= 0 && index < size)) throw new RangeError(`leaf ${index} is not in a tree of ${size} leaves`);
  const path = (m: number, lo: number, hi: number): Span[] => {
    const n = hi - lo;
    if (n === 1) return [];
    const k = largestPow2Below(n);
    return m < k ? [...path(m, lo, lo + k), [lo + k, hi]] : [...path(m - k, lo + k, hi), [lo, lo + k]];
  };
  return spanHashes(path(index, 0, size), read);
};

/** RFC 9162 §2.1.4.1 PROOF(m, D[0:n]): the consistency proof from the tree of `first` leaves to the one of `second` */
export const consistencyProof = (first: number, second: number, read: HashReader): Buffer[] => {
  if (!(first >= 0 && first <= second)) throw new RangeError(`no consistency proof from size ${first} to size ${second}`);
  if (first === 0 || first === second) return [];
  const sub = (m: number, lo: number, hi: number, complete: boolean): Span[] => {
    const n = hi - lo;
    if (m === n) return complete ? [] : [[lo, hi]];
    const k = largestPow2Below(n);
    return m <= k ? [...sub(m, lo, lo + k, complete), [lo + k, hi]] : [...sub(m - k, lo + k, hi, false), [lo, lo + k]];
  };
  return spanHashes(sub(first, 0, second, true), read);
};

/** the RFC's "if LSB(fn) is not set, right-shift fn and sn equally until either LSB(fn) is set or fn is 0" */
const shiftWhileEven = (fn: number, sn: number): [number, number] => {
  while (fn % 2 === 0 && fn !== 0) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return [fn, sn];
};

/** RFC 9162 §2.1.3.2: does `proof` put `leaf` at `index` of the tree of `size` leaves whose root is `root` */
export const verifyInclusion = (index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): boolean => {
  if (!(index >= 0 && index < size)) return false;
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      [fn, sn] = shiftWhileEven(fn, sn);
    } else r = nodeHash(r, p);
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && Buffer.from(r).equals(root);
};

/** RFC 9162 §2.1.4.2: does `proof` show the tree of `first` leaves (root `firstRoot`) is a prefix of the one of `second` */
export const verifyConsistency = (
  first: number,
  second: number,
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
  proof: readonly Uint8Array[],
): boolean => {
  if (!(first >= 0 && first <= second)) return false;
  if (first === second) return proof.length === 0 && Buffer.from(firstRoot).equals(secondRoot);
  if (first === 0) return proof.length === 0;
  if (proof.length === 0) return false;
  // RFC 9162 §2.1.4.2 step 1: a power-of-two first tree is its own first node
  const path = isPow2(first) ? [firstRoot, ...proof] : [...proof];
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Uint8Array = path[0]!;
  let sr: Uint8Array = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      [fn, sn] = shiftWhileEven(fn, sn);
    } else sr = nodeHash(sr, c);
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && Buffer.from(fr).equals(firstRoot) && Buffer.from(sr).equals(secondRoot);
};

const isPow2 = (n: number): boolean => n > 0 && 2 ** Math.round(Math.log2(n)) === n;
