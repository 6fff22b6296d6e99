/**
 * Human text for the figures the API, the dashboard, the CSV and the report show, written once so they read
 * the same everywhere: durations with a unit that fits (µs, ms, s, min, h, d), times as ISO-8601 UTC with
 * the zone spelled (`2024-11-24T03:12:00.123456789Z`, the CLI's format), booleans as words.
 */

import { formatTimeNs } from '../../shared/time.js';

const UNITS: readonly (readonly [bigint, string])[] = [
  [86_400_000_000_000n, 'd'],
  [3_600_000_000_000n, 'h'],
  [60_000_000_000n, 'min'],
  [1_000_000_000n, 's'],
  [1_000_000n, 'ms'],
  [1_000n, 'µs'],
];

/** `850 ns`, `32 µs`, `1.5 ms`, `12 s`, `4.2 min`, `3.1 h`; three significant digits at most */
export const formatDuration = (ns: bigint | number | string | null | undefined): string => {
  if (ns === null || ns === undefined || ns === '') return '';
  const n = typeof ns === 'bigint' ? ns : BigInt(Math.round(Number(ns)));
  const abs = n < 0n ? -n : n;
  for (const [size, unit] of UNITS) {
    if (abs >= size) {
      const v = Number(n) / Number(size);
      return `${Number(v.toPrecision(v >= 100 ? 3 : v >= 10 ? 3 : 2))} ${unit}`;
    }
  }
  return `${n} ns`;
};

/**
 * ns since the epoch in the one time format of every reader (CLI, API, dashboard, CSV, report): ISO-8601 UTC
 * with the Z, fractional digits only as needed (`2024-11-24T03:12:00.123456789Z`, `2024-11-24T03:12:00Z`)
 */
export const formatTime = (ns: bigint | string | null | undefined): string => {
  if (ns === null || ns === undefined || ns === '') return '';
  return formatTimeNs(BigInt(ns));
};

/** a share 0..1 as a percentage, or "no data" */
export const formatShare = (share: number | null | undefined): string =>
  share === null || share === undefined ? 'no data' : `${(share * 100).toFixed(1)}%`;

export const formatBoolean = (b: unknown): string => (b === true || b === 1 || b === '1' ? 'yes' : b === false || b === 0 || b === '0' ? 'no' : '');
