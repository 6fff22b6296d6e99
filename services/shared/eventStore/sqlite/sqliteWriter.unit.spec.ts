import { describe, expect, it } from 'vitest';
import { ExpectedVersionConflictError, NotFoundError, ValidationError, isAppError } from '../../../../schemas/index.js';
import { encodeIndexKeys } from '../indexKeys.js';
import { convertSqliteError, fromWireError, hasDeviceOnlyEvent, toWireError } from './sqliteWriter.js';

const roundTrip = (e: unknown) => fromWireError(structuredClone(toWireError(e)));

describe('writer errors across the thread boundary', () => {
  it('given each error of the closed set, when it crosses, then its kind and details arrive', () => {
    const v = roundTrip(new ValidationError('bad', [{ path: 'events[0].host', message: 'wrong host' }]));
    expect(v).toBeInstanceOf(ValidationError);
    expect((v as ValidationError).issues).toEqual([{ path: 'events[0].host', message: 'wrong host' }]);
    expect(roundTrip(new NotFoundError('nothing'))).toBeInstanceOf(NotFoundError);
    const c = roundTrip(new ExpectedVersionConflictError('host-a', '3', '5'));
    expect(c).toMatchObject({ kind: 'conflict', streamName: 'host-a', expected: '3', actual: '5' });
  });

  it("given SQLite's extended I/O and busy codes, when converted, then they are unavailable (retriable) and keep their code", () => {
    for (const code of ['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_IOERR_FSYNC', 'SQLITE_FULL']) {
      const e = Object.assign(new Error('disk trouble'), { code });
      expect(isAppError(convertSqliteError(e)) && (convertSqliteError(e) as { kind: string }).kind).toBe('unavailable');
      expect(roundTrip(e)).toMatchObject({ kind: 'unavailable', code });
    }
    const constraint = Object.assign(new Error('UNIQUE constraint failed'), { code: 'SQLITE_CONSTRAINT_UNIQUE' });
    expect(isAppError(convertSqliteError(constraint))).toBe(false);
  });
});

describe('device-only events in a request', () => {
  const line = (groups: number[], devices: string[]): string => `id-1\tT\t5\t${encodeIndexKeys({ groups, devices })}\t{"a":"\\t"}`;
  it('given lines, when one is device-only (no group, some device), then the request needs its host\'s groups; otherwise not', () => {
    expect(hasDeviceOnlyEvent(line([], ['0000:01:00.0']))).toBe(true);
    expect(hasDeviceOnlyEvent([line([1], ['0000:01:00.0']), line([], []), line([], ['0000:02:00.0'])].join('\n'))).toBe(true);
    expect(hasDeviceOnlyEvent([line([1], ['0000:01:00.0']), line([], []), line([2], [])].join('\n'))).toBe(false);
    expect(hasDeviceOnlyEvent('')).toBe(false);
  });
});
