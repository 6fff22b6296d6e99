import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bigIntOf } from './operations.js';

/** BigInt's answer as a comparable value: the bigint, or the error's class */
const answer = (f: () => bigint): bigint | string => {
  try {
    return f();
  } catch (e) {
    return (e as Error).constructor.name;
  }
};

const hexChars = [...'0123456789abcdefABCDEF'];
const oddChars = [...'xX _-+.gG\t\n\u0010\u0019\u0030'];

describe('bigIntOf (the recorded 64-bit values toOperation reads)', () => {
  it('given hex strings of every length, cases and stray characters, when read, then the value (or the error) is BigInt\'s', () => {
    const digits = fc.array(fc.constantFrom(...hexChars, ...hexChars, ...oddChars), { maxLength: 20 }).map((cs) => cs.join(''));
    const text = fc.oneof(
      digits.map((d) => `0x${d}`),
      digits.map((d) => `0X${d}`),
      digits,
      fc.string({ maxLength: 18 }),
    );
    fc.assert(fc.property(text, (s) => answer(() => bigIntOf(s)) === answer(() => BigInt(s))), { numRuns: 3000 });
  });

  it('given the edges of the number fast path, when read, then each is exact', () => {
    for (const s of ['0x', '0x0', '0x1fffffffffffff', '0x20000000000000', '0xfffffffffffff', '0x10000000000000', '0xffffffffffffffff', '0x00000000000001', ' 0x10', '0x10 ', '']) {
      expect(answer(() => bigIntOf(s))).toEqual(answer(() => BigInt(s)));
    }
  });

  it('given values zero-padded to 16 digits and beyond (as the simulator and the collector record them), when read, then each is BigInt\'s', () => {
    const padded = fc.tuple(fc.nat({ max: 24 }), fc.array(fc.constantFrom(...hexChars, ...oddChars), { maxLength: 18 })).map(([zeros, cs]) => `0x${'0'.repeat(zeros)}${cs.join('')}`);
    fc.assert(fc.property(padded, (s) => answer(() => bigIntOf(s)) === answer(() => BigInt(s))), { numRuns: 3000 });
    for (const s of ['0x0000000000000000', '0x000fffffffffffff', '0x0010000000000000', '0x001fffffffffffff', '0x00000000c0000000', '0x0000000e40000000', '0x00', '0x000x', '0x0000000000000000000000001']) {
      expect(answer(() => bigIntOf(s))).toEqual(answer(() => BigInt(s)));
    }
  });
});
