import { MISSING_ID } from '../projections/kernel/types.js';

/**
 * Recorded ↔ replayed iommufd object ids, per iommufd context (ids are per-ctx xarray slots).
 *
 * A model allocates ids as the kernel does (lowest free slot), so on a faithful replay they match; after
 * a divergence (an extra or a missing allocation) they shift. Ids are therefore treated as names:
 * - when a recorded operation returns a fresh id (devId, ioasId, hwptId) and the replay returns one too,
 *   the pair is bound, whatever the numbers (a renamed id is not a divergence by itself);
 * - a returned pt_id (the hwpt actually attached) is compared through the map when the recorded id is
 *   bound (a different hwpt is a divergence), and bound otherwise;
 * - later operations name recorded ids; they are translated to the bound replayed id. An unbound
 *   recorded id passes through unchanged unless that number is bound to another recorded id, in which
 *   case it becomes MISSING_ID (→ -ENOENT in every model);
 * - when the replay frees an object its binding is dropped, so a stale recorded id can't reach a new
 *   object that reused the slot.
 */
export interface IdMap {
  toReplayed(ictx: string, recorded: number): number;
  toRecorded(ictx: string, replayed: number): number | undefined;
  /** the replayed id a recorded id is bound to, if any */
  boundReplayed(ictx: string, recorded: number): number | undefined;
  /** bind a fresh allocation, replacing older bindings of either id */
  bind(ictx: string, recorded: number, replayed: number): void;
  /** drop the binding of a replayed id whose object the replay freed */
  forgetReplayed(ictx: string, replayed: number): void;
  /** bindings whose numbers differ, for the report */
  renamed(): number;
}

interface Pair {
  readonly r2p: Map<number, number>;
  readonly p2r: Map<number, number>;
}

export const createIdMap = (): IdMap => {
  const byCtx = new Map<string, Pair>();
  const pair = (ictx: string): Pair => {
    let p = byCtx.get(ictx);
    if (!p) {
      p = { r2p: new Map(), p2r: new Map() };
      byCtx.set(ictx, p);
    }
    return p;
  };
  return {
    toReplayed(ictx, recorded) {
      const p = byCtx.get(ictx);
      if (!p) return recorded;
      const bound = p.r2p.get(recorded);
      if (bound !== undefined) return bound;
      return p.p2r.has(recorded) ? MISSING_ID : recorded;
    },
    toRecorded(ictx, replayed) {
      return byCtx.get(ictx)?.p2r.get(replayed);
    },
    boundReplayed(ictx, recorded) {
      return byCtx.get(ictx)?.r2p.get(recorded);
    },
    bind(ictx, recorded, replayed) {
      const p = pair(ictx);
      const oldRep = p.r2p.get(recorded);
      if (oldRep !== undefined) p.p2r.delete(oldRep);
      const oldRec = p.p2r.get(replayed);
      if (oldRec !== undefined) p.r2p.delete(oldRec);
      p.r2p.set(recorded, replayed);
      p.p2r.set(replayed, recorded);
    },
    forgetReplayed(ictx, replayed) {
      const p = byCtx.get(ictx);
      const rec = p?.p2r.get(replayed);
      if (p && rec !== undefined) {
        p.p2r.delete(replayed);
        p.r2p.delete(rec);
      }
    },
    renamed() {
      let n = 0;
      for (const p of byCtx.values()) for (const [r, q] of p.r2p) if (r !== q) n += 1;
      return n;
    },
  };
};
