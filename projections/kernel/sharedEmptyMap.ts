/**
 * One shared empty Map for the model's Maps that most hosts leave empty (issue 23: an empty Map is ~180 B of hash
 * table; on ingest-fleet's mix 8 of a host's 10 model Maps are empty on 70-100% of hosts). Readers read it as any
 * Map. Its writers (mutate.ts, fdIndex.ts) put a Map of their own in its place before the first `set` (`ownMap`) and
 * put the shared one back when a delete empties theirs (`shareIfEmpty`), so the bytes follow what the host holds.
 * `set` on it throws: a writer that forgot to take its own Map fails at once instead of sharing entries between
 * hosts (`delete` and `clear` cannot change an empty Map).
 */
const SHARED_EMPTY_MAP = new Map<unknown, unknown>();
Object.defineProperty(SHARED_EMPTY_MAP, 'set', {
  value: () => {
    throw new Error('the shared empty Map is read-only: its writer puts a Map of its own in its place (ownMap)');
  },
});
Object.freeze(SHARED_EMPTY_MAP);

/** the shared empty Map, typed for its field */
export const emptyMap = <K, V>(): Map<K, V> => SHARED_EMPTY_MAP as Map<K, V>;

/**
 * `m`, or a new Map in place of an empty `m`: the caller stores what this returns in `m`'s place before writing it.
 * Any empty Map is taken as possibly shared, not only this module's: a clone (cloneState's structuredClone) keeps one
 * copy of an object the state holds in many places, so a clone's empty Maps are one plain Map shared by its hosts.
 */
export const ownMap = <K, V>(m: Map<K, V>): Map<K, V> => (m.size === 0 ? new Map<K, V>() : m);

/** the shared empty Map in place of an emptied `m` (its table freed), else `m` */
export const shareIfEmpty = <K, V>(m: Map<K, V>): Map<K, V> => (m.size === 0 ? emptyMap<K, V>() : m);
