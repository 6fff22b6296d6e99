import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createEventBuilder } from '../../../schemas/index.js';
import { canonicalJson, canonicalJsonReference, chainHash, digestOf, genesisHash } from './chain.js';

describe('chain > canonical JSON', () => {
  it('given any JSON value, when canonicalised on the append path, then the bytes equal the canonicalize package (RFC 8785)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(canonicalJson(v)).toBe(canonicalJsonReference(v));
      }),
      { numRuns: 2000 },
    );
  });

  it('given a catalogue event, when canonicalised, then keys are sorted and the package agrees', () => {
    const e = createEventBuilder({ host: 'h' }).event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' }, { actor: { pid: 1, comm: 'qemu' } });
    const s = canonicalJson(e);
    expect(s).toBe(canonicalJsonReference(e));
    expect(Object.keys(JSON.parse(s) as object)).toEqual([...Object.keys(e)].sort());
  });

  it('given values JSON cannot carry, when canonicalised, then a validation error is thrown', () => {
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(/non-finite/);
    expect(() => canonicalJson({ a: 1n })).toThrow(/bigint/);
    expect(() => canonicalJson(undefined)).toThrow(/cannot canonicalise/);
  });
});

describe('chain > hashes', () => {
  it('given two streams, when starting chains, then their genesis hashes differ and each link depends on the previous one', () => {
    expect(genesisHash('host-a').equals(genesisHash('host-b'))).toBe(false);
    const d = digestOf('{"a":1}');
    expect(chainHash(genesisHash('host-a'), d).equals(chainHash(genesisHash('host-b'), d))).toBe(false);
    expect(d.toString('hex')).toBe('015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862');
  });
});
