import Database from 'better-sqlite3';
import { v7 as uuidv7 } from 'uuid';
import { currentVersionOf, parseEvent, type IommuEvent, type ValidationError } from '../../schemas/index.js';
import type { EventDraft } from './eventDraft.js';

export interface SpoolOptions {
  /** the SQLite file; survives collector restarts */
  readonly path: string;
  readonly host: string;
  /** most events held before `append` refuses (back-pressure) @defaultValue 100_000 */
  readonly maxEvents?: number;
  /** FULL survives power loss, NORMAL (WAL) survives process crashes @defaultValue 'full' */
  readonly durability?: 'full' | 'normal';
  /** wall clock in ns (injected for tests) @defaultValue Date.now + hrtime */
  readonly nowNs?: () => bigint;
}

export type AppendResult =
  | { readonly ok: true; readonly events: IommuEvent[]; readonly invalid: { draft: EventDraft; error: ValidationError }[] }
  | { readonly ok: false; readonly reason: 'full'; readonly size: number };

export interface SpooledEvent {
  readonly seq: number;
  readonly event: IommuEvent;
  readonly json: string;
}

const wallClock = (): (() => bigint) => {
  const baseWall = BigInt(Date.now()) * 1_000_000n;
  const baseHr = process.hrtime.bigint();
  return () => baseWall + (process.hrtime.bigint() - baseHr);
};

/**
 * The collector's durable outbox. Drafts get their envelope here, in one transaction with the per-host
 * sequence counter, so a seq is never reused after a crash or restart and every stored event already has
 * its final id (a resend is a duplicate at the service, not a new event). Bounded: `append` refuses when
 * full and {@link Spool.waitForSpace} resolves once acknowledgements free room.
 */
export const openSpool = (options: SpoolOptions) => {
  const db = new Database(options.path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${options.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
  db.exec(`
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
  `);
  const storedHost = db.prepare<[], { value: string }>(`SELECT value FROM meta WHERE key = 'host'`).get();
  if (storedHost && storedHost.value !== options.host) {
    db.close();
    throw new Error(`spool ${options.path} belongs to host ${storedHost.value}, not ${options.host}: use one spool per host`);
  }
  db.prepare(`INSERT OR IGNORE INTO meta (key, value) VALUES ('host', ?)`).run(options.host);
  db.prepare(`INSERT OR IGNORE INTO meta (key, value) VALUES ('nextSeq', '1')`).run();
  const maxEvents = options.maxEvents ?? 100_000;
  const nowNs = options.nowNs ?? wallClock();
  const getNext = db.prepare<[], { value: string }>(`SELECT value FROM meta WHERE key = 'nextSeq'`);
  const setNext = db.prepare(`UPDATE meta SET value = ? WHERE key = 'nextSeq'`);
  const insert = db.prepare(`INSERT INTO outbox (seq, id, body) VALUES (?, ?, ?)`);
  const countStmt = db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM outbox`);
  const peekStmt = db.prepare<[number], { seq: number; body: string }>(`SELECT seq, body FROM outbox ORDER BY seq LIMIT ?`);
  const deleteStmt = db.prepare(`DELETE FROM outbox WHERE id = ?`);
  let size = countStmt.get()!.n;
  const spaceWaiters: (() => void)[] = [];
  const dataWaiters: (() => void)[] = [];

  const appendTx = db.transaction((drafts: readonly EventDraft[]) => {
    let seq = Number(getNext.get()!.value);
    const events: IommuEvent[] = [];
    const invalid: { draft: EventDraft; error: ValidationError }[] = [];
    for (const draft of drafts) {
      const input: Record<string, unknown> = {
        id: uuidv7(),
        type: draft.type,
        schemaVersion: currentVersionOf(draft.type),
        host: options.host,
        seq,
        time: nowNs().toString(),
        source: draft.source,
        data: draft.data,
      };
      if (draft.monoNs !== undefined) input.monoNs = draft.monoNs.toString();
      if (draft.actor) input.actor = draft.actor;
      if (draft.labels && draft.labels.length > 0) input.labels = draft.labels;
      const r = parseEvent(input, `${draft.source}:${draft.type}`);
      if (!r.ok) {
        // a bad draft never takes a sequence number: the service would see a gap that is not a loss
        invalid.push({ draft, error: r.error });
        continue;
      }
      const json = JSON.stringify(r.value);
      insert.run(seq, r.value.id, json);
      events.push(r.value);
      seq += 1;
    }
    setNext.run(String(seq));
    return { events, invalid };
  });

  const wake = (waiters: (() => void)[]): void => {
    for (const w of waiters.splice(0)) w();
  };
  const interrupt = (): void => {
    wake(spaceWaiters);
    wake(dataWaiters);
  };

  return {
    /** envelopes, validates and stores the drafts durably; refuses all of them when the spool is full */
    append(drafts: readonly EventDraft[]): AppendResult {
      if (size + drafts.length > maxEvents && size > 0) return { ok: false, reason: 'full', size };
      const result = appendTx(drafts);
      size += result.events.length;
      if (result.events.length > 0) wake(dataWaiters);
      return { ok: true, ...result };
    },
    /** the oldest events, in sequence order */
    peek(limit: number): SpooledEvent[] {
      return peekStmt.all(limit).map((row) => ({ seq: row.seq, json: row.body, event: JSON.parse(row.body) as IommuEvent }));
    },
    /** drops delivered (or permanently rejected) events */
    remove(ids: readonly string[]): void {
      if (ids.length === 0) return;
      db.transaction(() => {
        for (const id of ids) deleteStmt.run(id);
      })();
      size = countStmt.get()!.n;
      if (size < maxEvents) wake(spaceWaiters);
    },
    size: (): number => size,
    capacity: maxEvents,
    nextSeq: (): number => Number(getNext.get()!.value),
    /** resolves when there is room for `n` more events */
    waitForSpace(n = 1): Promise<void> {
      if (size + n <= maxEvents || size === 0) return Promise.resolve();
      return new Promise((resolve) => spaceWaiters.push(resolve));
    },
    /** resolves when the spool holds something to send */
    waitForData(): Promise<void> {
      if (size > 0) return Promise.resolve();
      return new Promise((resolve) => dataWaiters.push(resolve));
    },
    /** wakes every waiter (used on shutdown) */
    interrupt,
    close(): void {
      interrupt();
      db.close();
    },
  };
};
export type Spool = ReturnType<typeof openSpool>;
