import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createEventBuilder, parseEvent } from '../../../../schemas/index.js';
import { simulateFleet } from '../../../simulator/simulateFleet.js';
import { canonicalJson, canonicalJsonReference, stringifyIsCanonical, chainHash, chainLink, digestOf, genesisHash } from './chain.js';

describe('chain > canonical JSON', () => {
  it('given any JSON value, when canonicalised on the append path, then the bytes equal the canonicalize package (RFC 8785)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(canonicalJson(v)).toBe(canonicalJsonReference(v));
      }),
      { numRuns: 2000 },
    );
  });

  it('given JSON values with any UTF-16 text (quotes, controls, lone surrogates, U+2028), when canonicalised, then the bytes equal the package', () => {
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: 'binary' }), (v) => {
        expect(canonicalJson(v)).toBe(canonicalJsonReference(v));
      }),
      { numRuns: 2000 },
    );
    for (const s of ['a"b', 'a\\b', '\u0000\u001f', '\ud800x', 'x\udfff', '\ud83d\ude00', '\u2028\u2029\u007f', 'plain']) {
      expect(canonicalJson({ [s]: s, list: [s] })).toBe(canonicalJsonReference({ [s]: s, list: [s] }));
    }
  });

  it('given any JSON value with its keys already in order, when canonicalised, then the native fast path is taken and the bytes equal the package', () => {
    // integer-like keys always enumerate first and numerically ("9" before "10"): left out here, they take the slow path
    const ordered = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(ordered);
      if (v === null || typeof v !== 'object') return v;
      const out: Record<string, unknown> = {};
      // defined, not assigned: `out['__proto__'] = x` sets the prototype instead of a key, as JSON.parse does not
      for (const k of Object.keys(v).sort()) {
        if (!/^(?:0|[1-9]\d*)$/.test(k)) Object.defineProperty(out, k, { value: ordered((v as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true });
      }
      return out;
    };
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: 'binary' }), (v) => {
        const o = ordered(v);
        expect(stringifyIsCanonical(o)).toBe(true);
        expect(canonicalJson(o)).toBe(canonicalJsonReference(o));
      }),
      { numRuns: 2000 },
    );
    // a parsed object's own '__proto__' key is a key like any other (fast-check found the test's own copy losing it)
    const proto = JSON.parse('{"__proto__":[],"a":1}') as object;
    expect(stringifyIsCanonical(proto)).toBe(true);
    expect(canonicalJson(proto)).toBe('{"__proto__":[],"a":1}');
    expect(stringifyIsCanonical({ b: 1, a: 2 })).toBe(false);
    expect(stringifyIsCanonical({ a: { d: 1, c: 2 } })).toBe(false);
    expect(stringifyIsCanonical({ 10: 1, 9: 2 })).toBe(false);
    expect(stringifyIsCanonical({ a: [{ y: 1, x: 2 }] })).toBe(false);
    expect(stringifyIsCanonical({ a: Number.POSITIVE_INFINITY })).toBe(false);
    expect(stringifyIsCanonical({ a: new Date(0) })).toBe(false);
    expect(stringifyIsCanonical(Object.create({ inherited: 1 }) as object)).toBe(false);
  });

  it('given parsed catalogue events of a simulated fleet, when canonicalised, then every one takes the native fast path and the package agrees', () => {
    let n = 0;
    for (const raw of simulateFleet({ seed: 3, hosts: 3, events: 3_000, traces: true })) {
      const r = parseEvent(raw);
      if (!r.ok) continue;
      expect(stringifyIsCanonical(r.value)).toBe(true);
      expect(canonicalJson(r.value)).toBe(canonicalJsonReference(r.value));
      n++;
    }
    expect(n).toBeGreaterThan(2_000);
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

  it('given links computed one after another, when compared with a fresh sha256 of prev || digest, then each matches (the reused input buffer leaks nothing)', () => {
    let prev = genesisHash('host-a');
    for (const text of ['{"a":1}', '{"b":2}', '{"c":3}']) {
      const d = digestOf(text);
      const link = chainHash(prev, d);
      expect(link.toString('hex')).toBe(createHash('sha256').update(prev).update(d).digest('hex'));
      expect(chainLink(prev, text).equals(link)).toBe(true);
      prev = link;
    }
  });
});
