import { createHash, hash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import { ValidationError } from '../../../../schemas/index.js';

/**
 * Hash chain per stream. Each event's canonical bytes (RFC 8785 JSON via `canonicalize`) get a digest
 * d = sha256(bytes); the chain hash is h(r) = sha256(h(r-1) || d(r)), with h(-1) = sha256("iommutrail/chain/v1\n" + stream).
 *
 * The extra digest step (rather than sha256(prev || bytes)) was made for partial exports proving left-out
 * events by digest; bundles no longer do (a digest cannot show its event was outside the selection: see
 * ../sqlite/tamper/bundle.ts), but the chain format stays, and the security is the same (sha256 pins the bytes).
 */
export const HASH_BYTES = 32;

// the package is CommonJS (module.exports = fn) with ESM-style typings: at runtime the default import is the function
const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined;

/** RFC 8785 canonical JSON via the `canonicalize` package (the reference: verify and tests use it) */
export const canonicalJsonReference = (value: unknown): string => {
  const s = canonicalize(value);
  if (s === undefined) throw new ValidationError('cannot canonicalise a value JSON cannot carry');
  return s;
};

/**
 * RFC 8785 canonical JSON on the append path. Why not the package there: it serialises with nested template
 * strings and `reduce`, a large share of the per-event append budget. For the JSON values events are made of
 * (objects, arrays, strings, finite numbers, booleans, null) RFC 8785 is exactly JSON.stringify with object
 * keys sorted by UTF-16 code units, which is what this does; a property test checks it byte for byte
 * against the package.
 */
export const canonicalJson = (value: unknown): string => {
  // a parsed catalogue event has every key in order already (schemas/canonicalObject.ts): the native serialiser
  // then writes its canonical bytes at a third of the cost of sorting them here
  if (typeof value === 'object' && value !== null && stringifyIsCanonical(value)) return JSON.stringify(value);
  const s = canon(value);
  if (s === undefined) throw new ValidationError('cannot canonicalise a value JSON cannot carry');
  return s;
};

/**
 * True when JSON.stringify(v) is already v's RFC 8785 form: every object a plain one whose own keys enumerate
 * in UTF-16 code-unit order, every number finite, no bigint, no toJSON. Strings and numbers are then written
 * exactly as RFC 8785 writes them (it defers to the same ECMAScript serialisation). Reads, never allocates.
 */
export const stringifyIsCanonical = (v: unknown): boolean => {
  if (typeof v !== 'object' || v === null) return typeof v === 'number' ? Number.isFinite(v) : typeof v !== 'bigint';
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!stringifyIsCanonical(v[i])) return false;
    return true;
  }
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return false;
  const o = v as Record<string, unknown>;
  let prev: string | undefined;
  for (const k in o) {
    if (prev !== undefined && !(prev < k)) return false;
    prev = k;
    if (!stringifyIsCanonical(o[k])) return false;
  }
  return true;
};

// a string needs JSON.stringify's escaping only with a quote, backslash, control character or any surrogate
// (a lone one is escaped as \uXXXX); other strings are copied between quotes as they are
// eslint-disable-next-line no-control-regex -- control characters are exactly what JSON must escape
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
// object keys repeat from event to event: quote each once (bounded: keys under labels are free-form)
const quotedKeys = new Map<string, string>();
const quotedKey = (k: string): string => {
  let q = quotedKeys.get(k);
  if (q === undefined) {
    q = `${JSON.stringify(k)}:`;
    if (quotedKeys.size < 10_000) quotedKeys.set(k, q);
  }
  return q;
};

const canon = (v: unknown): string | undefined => {
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'string') return NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`;
    if (typeof v === 'number' && !Number.isFinite(v)) throw new ValidationError('cannot canonicalise a non-finite number');
    if (typeof v === 'bigint') throw new ValidationError('cannot canonicalise a bigint');
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) {
    let s = '[';
    for (let i = 0; i < v.length; i++) {
      if (i > 0) s += ',';
      s += canon(v[i]) ?? 'null';
    }
    return `${s}]`;
  }
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return canon((v as { toJSON: () => unknown }).toJSON());
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort();
  let s = '{';
  let first = true;
  for (const k of keys) {
    const c = canon(o[k]);
    if (c === undefined) continue;
    s += first ? quotedKey(k) : `,${quotedKey(k)}`;
    first = false;
    s += c;
  }
  return `${s}}`;
};

export const digestOf = (canonical: string | Buffer): Buffer => hash('sha256', canonical, 'buffer');

// one reused 64-byte input for the chain link: no allocation per event (hash() copies nothing back into it)
const link = Buffer.alloc(2 * HASH_BYTES);
export const chainHash = (prev: Uint8Array, digest: Uint8Array): Buffer => {
  // a stored value of another length (a damaged row) keeps the general form
  if (prev.length !== HASH_BYTES || digest.length !== HASH_BYTES) return hash('sha256', Buffer.concat([prev, digest], 2 * HASH_BYTES), 'buffer');
  link.set(prev, 0);
  link.set(digest, HASH_BYTES);
  return hash('sha256', link, 'buffer');
};

/**
 * chainHash(prev, digestOf(canonical)) in one step, for the append and trusted-read paths: the digest goes
 * straight into the reused link buffer (a binary-string output costs less than a Buffer), one Buffer per event;
 * with `digestOut` it is also copied there at `digestAt`.
 */
export const chainLink = (prev: Uint8Array, canonical: string, digestOut?: Uint8Array, digestAt = 0): Buffer => {
  if (prev.length !== HASH_BYTES) {
    const d = digestOf(canonical);
    digestOut?.set(d, digestAt);
    return chainHash(prev, d);
  }
  link.set(prev, 0);
  link.write(hash('sha256', canonical, 'binary'), HASH_BYTES, 'binary');
  // the digest too, when asked (a v2 log's leaf is hashed from it): no second hash of the bytes
  if (digestOut) for (let k = 0; k < HASH_BYTES; k++) digestOut[digestAt + k] = link[HASH_BYTES + k]!;
  return hash('sha256', link, 'buffer');
};

export const genesisHash = (streamName: string): Buffer => createHash('sha256').update(`iommutrail/chain/v1\n${streamName}`).digest();

export const toHex = (b: Buffer | Uint8Array): string => Buffer.from(b).toString('hex');
export const fromHex = (s: string): Buffer => Buffer.from(s, 'hex');
