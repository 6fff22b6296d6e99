import { createHash, hash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import { ValidationError } from '../../../schemas/index.js';

/**
 * Hash chain per stream. Each event's canonical bytes (RFC 8785 JSON via `canonicalize`) get a digest
 * d = sha256(bytes); the chain hash is h(r) = sha256(h(r-1) || d(r)), with h(-1) = sha256("iommutrail/chain/v1\n" + stream).
 *
 * Why the extra digest step (rather than sha256(prev || bytes)): a partial export can then prove the events it
 * leaves out by their 32-byte digests alone, without shipping their contents; the security is the same
 * (sha256 is collision resistant, so a digest pins the bytes).
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
  const s = canon(value);
  if (s === undefined) throw new ValidationError('cannot canonicalise a value JSON cannot carry');
  return s;
};

const canon = (v: unknown): string | undefined => {
  if (v === null || typeof v !== 'object') {
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
    if (!first) s += ',';
    first = false;
    s += `${JSON.stringify(k)}:${c}`;
  }
  return `${s}}`;
};

export const digestOf = (canonical: string | Buffer): Buffer => hash('sha256', canonical, 'buffer');

export const chainHash = (prev: Buffer, digest: Buffer): Buffer => hash('sha256', Buffer.concat([prev, digest], 64), 'buffer');

export const genesisHash = (streamName: string): Buffer => createHash('sha256').update(`iommutrail/chain/v1\n${streamName}`).digest();

export const toHex = (b: Buffer | Uint8Array): string => Buffer.from(b).toString('hex');
export const fromHex = (s: string): Buffer => Buffer.from(s, 'hex');
