import { createHash } from 'node:crypto';
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

/** RFC 8785 canonical JSON; throws ValidationError for values JSON cannot carry (bigint, NaN, undefined) */
export const canonicalJson = (value: unknown): string => {
  const s = canonicalize(value);
  if (s === undefined) throw new ValidationError('cannot canonicalise a value JSON cannot carry');
  return s;
};

export const digestOf = (canonical: string | Buffer): Buffer => createHash('sha256').update(canonical).digest();

export const chainHash = (prev: Buffer, digest: Buffer): Buffer => createHash('sha256').update(prev).update(digest).digest();

export const genesisHash = (streamName: string): Buffer => createHash('sha256').update(`iommutrail/chain/v1\n${streamName}`).digest();

export const toHex = (b: Buffer | Uint8Array): string => Buffer.from(b).toString('hex');
export const fromHex = (s: string): Buffer => Buffer.from(s, 'hex');
