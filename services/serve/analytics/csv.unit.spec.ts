import { describe, expect, it } from 'vitest';
import { toCsv, toCsvCell } from './csv.js';

describe('Analytics > CSV writer', () => {
  it.each(['=', '+', '-', '@', '\t', '\r'])('hardening #10: a text cell starting with %j gets a leading quote and is quoted', (c) => {
    expect(toCsvCell(`${c}HYPERLINK("x")`)).toBe(`"'${c}HYPERLINK(""x"")"`);
  });

  it('given text that only contains a formula character later, when written, then it is quoted but not prefixed', () => {
    expect(toCsvCell('a=b, "c"\nd')).toBe('"a=b, ""c""\nd"');
  });

  it('given numbers, null, arrays, when written, then numbers are bare, null empty, arrays JSON text', () => {
    expect(toCsv(['n', 'x', 'list'], [[-1, null, ['=a']]])).toBe('"n","x","list"\n-1,,"[""=a""]"\n');
  });
});
