import { describe, expect, it } from 'vitest';
import { createEventBuilder, isAppError } from '../../../../schemas/index.js';
import type { EventStore } from '../eventStore.js';
import { testEventStoreContract } from '../eventStore.features.js';
import { connectEsdbEventStore, getEsdbEventStore } from './esdbEventStore.js';

// compile-time conformance: the adapter is an EventStore
const _conforms: (...a: Parameters<typeof getEsdbEventStore>) => EventStore = getEsdbEventStore;

const url = process.env.EVENTSTORE_URL;

if (url) {
  const open = async () => {
    let store = connectEsdbEventStore(url);
    return {
      get store() {
        return store;
      },
      reopen: async () => {
        await store.close();
        store = connectEsdbEventStore(url);
        return store;
      },
      dispose: () => store.close(),
    };
  };
  testEventStoreContract('EsdbEventStore', { open, liveDeliveryTimeoutMs: 15_000 });
} else {
  // EventStoreDB may be skipped (no server package is installable here); say so plainly, CI included
  const reason = 'EVENTSTORE_URL is not set (e.g. esdb://localhost:2113?tls=false; see deploy/eventstoredb/README.md)';
  console.warn(`SKIPPED EsdbEventStore contract suite: ${reason}`);
  describe.skip(`EsdbEventStore contract suite [skipped: ${reason}]`, () => {
    it('runs the shared contract against a live EventStoreDB/KurrentDB server', () => {
      expect(url).toBeDefined();
    });
  });
}

describe('EsdbEventStore > without a server', () => {
  it('given nothing listening, when appending, then the client error becomes a retriable UnavailableError', async () => {
    const store = connectEsdbEventStore('esdb://127.0.0.1:1?tls=false&defaultDeadline=3000');
    const event = createEventBuilder({ host: 'x' }).event('DriverBound', { device: '0000:01:00.0', driver: 'vfio-pci' });
    const error = await store.appendToStream('host-x', [event]).catch((e: unknown) => e);
    await store.close();
    expect(isAppError(error) && error.kind === 'unavailable' && error.retriable).toBe(true);
  });
});
