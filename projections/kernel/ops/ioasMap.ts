import { fail, failWith, liveIctx, ok, okPlanned, refuse, type Planned } from '../kernel.js';
import { putObject, type ModelChanges } from '../mutate.js';
import type { IommufdObject, ModelState, Operation, PlannedOutcome, Transition } from '../types.js';

/*
 * IOAS mappings (drivers/iommu/iommufd/io_pagetable.c, ioas.c): IOMMU_IOAS_MAP, IOMMU_IOAS_MAP_FILE (6.13) and
 * IOMMU_IOAS_UNMAP as check and plan (issue 16): the check is the kernel's refusal, the plan the IOAS's areas
 * after a call with a given outcome, so `evolve` follows a recorded map or unmap the kernel would have refused.
 * IOMMU_IOAS_CHANGE_PROCESS and IOMMU_IOAS_GET_PA are checks only (reads: kernel.ts planCommon).
 */

type Ioas = Extract<IommufdObject, { kind: 'ioas' }>;
type Area = readonly [bigint, bigint];
type MapOp = Extract<Operation, { kind: 'mapIoas' | 'mapFile' }>;
type UnmapOp = Extract<Operation, { kind: 'unmapIoas' }>;

const PAGE = 4096n;
const hex64 = (n: bigint): string => `0x${n.toString(16).padStart(16, '0')}`;

/** iommufd_get_ioas: the IOAS, or the decision refusing the call */
const ioasFor = (state: ModelState, handle: string, id: number): Planned<Ioas> => {
  const ictx = liveIctx(state, handle);
  if (!ictx) return refuse('common.fd.ebadf');
  const obj = ictx.objects.get(id);
  if (!obj || obj.kind !== 'ioas') return refuse('upstream.ioas.enoent');
  return { ok: true, value: obj };
};

/** the IOAS a recorded call names, in any ctx the model holds (open, or closed and held) */
const ioasIn = (state: ModelState, handle: string, id: number): Ioas | undefined => {
  const o = state.ictxs.get(handle)?.objects.get(id);
  return o?.kind === 'ioas' ? o : undefined;
};

/** iopt->iova_alignment: PAGE_SIZE once a domain (any hwpt of this IOAS) is in the IOAS, else 1 */
const ioasAlignment = (state: ModelState, handle: string, ioasId: number): bigint => {
  for (const o of state.ictxs.get(handle)?.objects.values() ?? []) if (o.kind === 'hwpt' && o.ioas === ioasId) return PAGE;
  return 1n;
};

/** the areas with `area` in IOVA order (after those starting at or below it) */
const withArea = (areas: readonly Area[], area: Area): Area[] => {
  let i = areas.length;
  while (i > 0 && areas[i - 1]![0] > area[0]) i -= 1;
  const next = areas.slice(0, i);
  next.push(area);
  for (let j = i; j < areas.length; j++) next.push(areas[j]!);
  return next;
};

/** an IOAS record with new areas (built field by field: a spread that overwrites keys is V8's slow path, records.ts) */
const ioasWith = (ioas: Ioas, areas: readonly Area[], fileAreas: readonly string[] | undefined, mappings: number | undefined): Ioas => {
  const next: { -readonly [K in keyof Ioas]: Ioas[K] } = { kind: 'ioas', compat: ioas.compat, areas };
  if (fileAreas !== undefined) next.fileAreas = fileAreas;
  if (mappings !== undefined) next.mappings = mappings;
  return next;
};

/**
 * IOAS_MAP / IOAS_MAP_FILE as made (or recorded: a map the kernel refuses, overlapping or unaligned, is
 * followed): the area joins the IOAS, a file area is marked, an IOAS_MAP counts one mapping
 */
const planMap = (state: ModelState, op: MapOp, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const ioas = outcome.ok ? ioasIn(state, op.ictx, op.ioasId) : undefined;
  if (!ioas) return;
  const areas = op.length === 0n ? (ioas.areas ?? []) : withArea(ioas.areas ?? [], [op.iova, op.iova + op.length - 1n]);
  const object =
    op.kind === 'mapFile'
      ? ioasWith(ioas, areas, [...(ioas.fileAreas ?? []), op.iova.toString()], ioas.mappings)
      : ioasWith(ioas, areas, ioas.fileAreas, (ioas.mappings ?? 0) + 1);
  putObject(state, changes, op.ictx, op.ioasId, object);
};

/** IOAS_MAP and IOAS_MAP_FILE (iopt_map_pages / iopt_map_file_pages): the same range checks */
export const decideMap = (state: ModelState, op: MapOp): Transition => {
  const ioas = ioasFor(state, op.ictx, op.ioasId);
  if (!ioas.ok) return ioas.decision;
  const align = ioasAlignment(state, op.ictx, op.ioasId);
  if (op.length === 0n || op.iova % align !== 0n || op.length % align !== 0n) return fail('upstream.map.einval');
  const last = op.iova + op.length - 1n;
  if ((ioas.value.areas ?? []).some(([first, end]) => first <= last && end >= op.iova)) return fail('upstream.map.eexist');
  return okPlanned(op.kind === 'mapFile' ? 'upstream.map-file.ok' : 'upstream.map.ok', { iova: hex64(op.iova) }, (o, changes) => planMap(state, op, o, changes));
};

interface UnmapWalk {
  readonly kept: readonly Area[];
  readonly unmapped: bigint;
  readonly crossing: boolean;
}

/**
 * iopt_unmap_iova_range: the areas inside [iova, last] go, in IOVA order; the kernel's walk stops at the first
 * area crossing the range's edge (`stops`: -ENOENT with the areas before it gone). A recorded success is
 * followed past such an area (`stops` false): every area inside the range goes, the crossing ones stay.
 */
const unmapWalk = (areas: readonly Area[], iova: bigint, last: bigint, stops: boolean): UnmapWalk => {
  const kept: Area[] = [];
  let unmapped = 0n;
  let crossing = false;
  for (const area of areas) {
    const [first, end] = area;
    const inRange = first <= last && end >= iova;
    if (!inRange || (crossing && stops)) kept.push(area);
    else if (first < iova || end > last) {
      crossing = true;
      kept.push(area);
    } else unmapped += end - first + 1n;
  }
  return { kept, unmapped, crossing };
};

/** the IOAS after an unmap's walk; a successful call (`counted`) is one mapping less */
const applyUnmap = (state: ModelState, op: UnmapOp, ioas: Ioas, walk: UnmapWalk, counted: boolean, changes: ModelChanges): void => {
  if (walk.unmapped === 0n && !counted) return;
  const fileAreas = ioas.fileAreas?.filter((first) => walk.kept.some(([k]) => k.toString() === first));
  const mappings = counted ? Math.max(0, (ioas.mappings ?? 0) - 1) : ioas.mappings;
  putObject(state, changes, op.ictx, op.ioasId, ioasWith(ioas, walk.kept, fileAreas, mappings));
};

/** IOAS_UNMAP as made or recorded: a success's walk, or the partial walk of an -ENOENT; other refusals change nothing */
const planUnmap = (state: ModelState, op: UnmapOp, outcome: PlannedOutcome, changes: ModelChanges): void => {
  const ioas = ioasIn(state, op.ictx, op.ioasId);
  const partway = !outcome.ok && 'errno' in outcome && outcome.errno === 'ENOENT';
  if (!ioas || op.length === 0n || (!outcome.ok && !partway)) return;
  applyUnmap(state, op, ioas, unmapWalk(ioas.areas ?? [], op.iova, op.iova + op.length - 1n, !outcome.ok), outcome.ok, changes);
};

export const decideUnmap = (state: ModelState, op: UnmapOp): Transition => {
  const ioas = ioasFor(state, op.ictx, op.ioasId);
  if (!ioas.ok) return ioas.decision;
  if (op.length === 0n) return fail('upstream.unmap.einval');
  // planUnmap's walk, on the IOAS already looked up
  const walk = unmapWalk(ioas.value.areas ?? [], op.iova, op.iova + op.length - 1n, true);
  if (walk.crossing || walk.unmapped === 0n) return failWith('upstream.unmap.enoent', walk.unmapped === 0n ? null : (changes) => applyUnmap(state, op, ioas.value, walk, false, changes));
  return ok('upstream.unmap.ok', (changes) => applyUnmap(state, op, ioas.value, walk, true, changes), { length: hex64(walk.unmapped) });
};

/** the plans of the IOAS mapping calls */
export const planIoasMapping = (op: MapOp | UnmapOp, outcome: PlannedOutcome, state: ModelState, changes: ModelChanges): void =>
  op.kind === 'unmapIoas' ? planUnmap(state, op, outcome, changes) : planMap(state, op, outcome, changes);

/** iommufd_ioas_change_process: every area of every IOAS of the ctx must come from a file */
export const decideChangeProcess = (state: ModelState, op: Extract<Operation, { kind: 'changeProcess' }>): Transition => {
  const ictx = liveIctx(state, op.ictx);
  if (!ictx) return fail('common.fd.ebadf');
  for (const o of ictx.objects.values()) {
    if (o.kind !== 'ioas') continue;
    const files = new Set(o.fileAreas ?? []);
    if ((o.areas ?? []).some(([first]) => !files.has(first.toString()))) return fail('upstream.change-process.non-file');
  }
  return ok('upstream.change-process.ok');
};

/**
 * IOMMU_IOAS_GET_PA (7.3, noiommu mode): the physical address behind an IOVA some area of the IOAS maps. A read:
 * no state change. The model does not know physical memory: a success echoes the recorded `phys`, if any.
 */
export const decideGetPa = (state: ModelState, op: Extract<Operation, { kind: 'getPa' }>): Transition => {
  const ioas = ioasFor(state, op.ictx, op.ioasId);
  if (!ioas.ok) return ioas.decision;
  if (!(ioas.value.areas ?? []).some(([first, last]) => first <= op.iova && op.iova <= last)) return fail('upstream.get-pa.unmapped');
  return ok('upstream.get-pa.ok', null, op.phys === undefined ? undefined : { phys: op.phys });
};
