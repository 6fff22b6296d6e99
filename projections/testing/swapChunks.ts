import type { IommuEvent } from '../../schemas/index.js';

/**
 * One client posting each host's events in `chunk`-event chunks with every pair of chunks swapped
 * (2,1,4,3,…), hosts taking turns by chunk: the out-of-order delivery of hardening #1 (tests and the figure).
 */
export const swapChunks = (events: readonly IommuEvent[], chunk: number): IommuEvent[] => {
  const byHost = new Map<string, IommuEvent[]>();
  for (const e of events) {
    let list = byHost.get(e.host);
    if (list === undefined) byHost.set(e.host, (list = []));
    list.push(e);
  }
  const chunked = [...byHost.values()].map((list) => {
    const chunks: IommuEvent[][] = [];
    for (let i = 0; i < list.length; i += chunk) chunks.push(list.slice(i, i + chunk));
    for (let i = 0; i + 1 < chunks.length; i += 2) [chunks[i], chunks[i + 1]] = [chunks[i + 1]!, chunks[i]!];
    return chunks;
  });
  const out: IommuEvent[] = [];
  for (let round = 0; chunked.some((c) => round < c.length); round++) for (const c of chunked) out.push(...(c[round] ?? []));
  return out;
};
