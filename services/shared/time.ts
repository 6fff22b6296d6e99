// The one way times are read from people and written back to them: the CLI, the API, the dashboard, the
// report and the config all use these (one format everywhere).
// positions and ns times are int64 in every store
export const INT64_MAX = 9_223_372_036_854_775_807n;

const NS_PER_MS = 1_000_000n;
const DAY_MS = 86_400_000;

// a calendar time: date, then optionally a time of day (T or a space) with seconds and up to 9 fractional
// digits, then optionally a zone (Z, UTC, ±HH:MM or ±HHMM); no zone means UTC, never the reader's local zone
const CALENDAR = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|UTC|[+-]\d{2}:?\d{2})?$/i;
// relative to now: -1h, -30m, -7d, -90s, -2w, -500ms, -5min, or now
const RELATIVE = /^(?:now)?\s*-\s*(\d{1,9})\s*(ms|s|min|m|h|d|w)$/i;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, min: 60_000, m: 60_000, h: 3_600_000, d: DAY_MS, w: 7 * DAY_MS };
// a duration: 30m, 6h, 2d (and ms, s, min)
const DURATION = /^(\d{1,9})(ms|s|min|m|h|d)$/;

/** ns of a duration (`30m`, `6h`, `2d`, `500ms`), or undefined when it is none */
export const parseDurationNs = (s: string): bigint | undefined => {
  const m = DURATION.exec(s);
  return m === null ? undefined : BigInt(m[1]!) * BigInt(UNIT_MS[m[2]!]!) * NS_PER_MS;
};
// today / yesterday, optionally at a time of day (UTC unless a zone is given)
const DAY_WORD = /^(today|yesterday)(?:\s+(\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)\s*(Z|UTC|[+-]\d{2}:?\d{2})?)?$/i;

const zoneOffsetMs = (zone: string | undefined): number => {
  if (zone === undefined || /^(z|utc)$/i.test(zone)) return 0;
  const m = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!;
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) * 60_000;
};

const fromCalendar = (m: RegExpExecArray): bigint | undefined => {
  const [, y, mo, d, h = '00', mi = '00', sec = '00', frac = '', zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec));
  const back = new Date(ms);
  // Date.UTC rolls 02-30 over to March: a date that does not exist is not a time
  if (Number.isNaN(ms) || back.getUTCMonth() !== Number(mo) - 1 || back.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 || Number(sec) > 59) return undefined;
  return BigInt(ms - zoneOffsetMs(zone)) * NS_PER_MS + BigInt(frac.padEnd(9, '0'));
};

/**
 * ns since the epoch from what people type, one rule for the CLI, the API and the dashboard: decimal ns;
 * a calendar time (`2026-11-23T03:12:00Z`, `2026-11-23 03:12`, `2026-11-23`), UTC unless a zone is given
 * (`Z`, `UTC`, `+01:00`); relative to `nowMs` (`-1h`, `-30m`, `-7d`, `now`); `today` or `yesterday`,
 * optionally at a time of day (`yesterday 03:00`). Undefined when it is none of these.
 */
export const parseTimeNs = (raw: string, nowMs: number = Date.now()): bigint | undefined => {
  const s = raw.trim();
  let ns: bigint | undefined;
  if (/^\d{1,20}$/.test(s)) ns = BigInt(s);
  else if (/^now$/i.test(s)) ns = BigInt(nowMs) * NS_PER_MS;
  else {
    const rel = RELATIVE.exec(s);
    const cal = CALENDAR.exec(s);
    const day = DAY_WORD.exec(s);
    if (rel) ns = BigInt(nowMs - Number(rel[1]) * UNIT_MS[rel[2]!.toLowerCase()]!) * NS_PER_MS;
    else if (cal) ns = fromCalendar(cal);
    else if (day) {
      const today = new Date(nowMs - (nowMs % DAY_MS)).toISOString().slice(0, 10);
      const date = day[1]!.toLowerCase() === 'today' ? today : new Date(Date.parse(today) - DAY_MS).toISOString().slice(0, 10);
      const c = CALENDAR.exec(`${date}${day[2] ? ` ${day[2]}` : ''}${day[3] ?? ''}`);
      ns = c ? fromCalendar(c) : undefined;
    }
  }
  return ns !== undefined && ns >= 0n && ns <= INT64_MAX ? ns : undefined;
};

/** the one way a time is written back to people: UTC ISO-8601 with Z, fractional digits only as needed */
export const formatTimeNs = (ns: bigint): string => {
  const iso = new Date(Number(ns / NS_PER_MS)).toISOString().slice(0, 19);
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${iso}${frac ? `.${frac}` : ''}Z`;
};

export const TIME_FORMS = 'an ISO-8601 time (2026-11-23T03:12:00Z; no zone means UTC), a date, a relative time (-1h, -7d, yesterday 03:00) or ns since the epoch';

