import { describe, expect, it } from 'vitest';
import { initialState } from './kernel.js';
import { NO_CHANGES, putContainer, putFd, removeContainer, removeFd, removeIctx, setGroupFd, setIctxOpen } from './mutate.js';
import { openedFd } from './records.js';
import { emptyMap } from './sharedEmptyMap.js';
import type { ModelState } from './types.js';

const emptyMaps = (s: ModelState) => [s.fds, s.ictxs, s.groupFds, s.containers, s.fdIndex.byDevice, s.fdIndex.byHwpt, s.fdIndex.pasidHwpts, s.fdIndex.ownedGroups];

describe('the shared empty Map (issue 23: the model Maps most hosts leave empty)', () => {
  it('given a new host, its Maps that start empty are the one shared empty Map, and a set on it throws', () => {
    const s = initialState();
    for (const m of emptyMaps(s)) expect(m).toBe(emptyMap());
    expect(() => (emptyMap() as Map<string, number>).set('x', 1)).toThrow(/shared empty Map is read-only/);
    expect(emptyMap().size).toBe(0);
  });

  it('given two new hosts, when one opens an fd, a ctx, a group node and a container, then the other still holds nothing', () => {
    const a = initialState();
    const b = initialState();
    putFd(a, NO_CHANGES, openedFd('fd1', '0000:01:00.0', 'group'));
    setIctxOpen(a, NO_CHANGES, 'ictx1', true);
    setGroupFd(a, NO_CHANGES, 'gfd1', 1);
    putContainer(a, NO_CHANGES, { handle: 'c1', iommuType: null, open: true });
    expect([a.fds.size, a.ictxs.size, a.groupFds.size, a.containers.size, a.fdIndex.byDevice.size]).toEqual([1, 1, 1, 1, 1]);
    for (const m of emptyMaps(b)) expect(m.size).toBe(0);
    expect(emptyMap().size).toBe(0);
  });

  it('given two new hosts cloned together (structuredClone: one copy of the shared Map for all their empty Maps), when one opens an fd on a hwpt and a ctx, then the other and its other Maps hold nothing', () => {
    const [a, b] = structuredClone([initialState(), initialState()]);
    putFd(a!, NO_CHANGES, { ...openedFd('fd1', '0000:01:00.0', 'cdev'), ictx: 'ictx1', devId: 1, hwpt: 2 });
    setIctxOpen(a!, NO_CHANGES, 'ictx1', true);
    expect([a!.fds.size, a!.ictxs.size, a!.fdIndex.byDevice.size, a!.fdIndex.byHwpt.size, a!.fdIndex.ownedGroups.size, a!.groupFds.size]).toEqual([1, 1, 1, 1, 0, 0]);
    expect(a!.fdIndex.byHwpt.get('ictx1')?.get(2)?.map((f) => f.handle)).toEqual(['fd1']);
    for (const m of emptyMaps(b!)) expect(m.size).toBe(0);
  });

  it('given a host that opened them, when all are closed again, then its Maps are the shared empty Map again (the tables freed)', () => {
    const s = initialState();
    putFd(s, NO_CHANGES, openedFd('fd1', '0000:01:00.0', 'cdev'));
    setIctxOpen(s, NO_CHANGES, 'ictx1', true);
    setGroupFd(s, NO_CHANGES, 'gfd1', 1);
    putContainer(s, NO_CHANGES, { handle: 'c1', iommuType: null, open: true });
    removeFd(s, NO_CHANGES, 'fd1');
    removeIctx(s, NO_CHANGES, 'ictx1');
    setGroupFd(s, NO_CHANGES, 'gfd1', null);
    removeContainer(s, NO_CHANGES, 'c1');
    for (const m of emptyMaps(s)) expect(m).toBe(emptyMap());
  });
});
