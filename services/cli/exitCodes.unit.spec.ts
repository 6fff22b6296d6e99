import { describe, expect, it } from 'vitest';
import { EXIT, exitCodeFor } from './exitCodes.js';

describe('CLI exit codes', () => {
  it('issue 22: an unexpected error exits 70 (EX_SOFTWARE), never 1, which means a finding such as "not viable"', () => {
    // given an error no adapter or command turned into one of the closed set
    const crash = new TypeError("Cannot read properties of undefined (reading 'ok')");
    // when mapped at the CLI edge, then it is told apart from every finding
    expect(exitCodeFor(crash)).toBe(70);
    expect(exitCodeFor(crash)).not.toBe(EXIT.finding);
  });
});
