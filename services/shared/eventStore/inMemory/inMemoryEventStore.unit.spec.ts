import type { EventStore } from '../eventStore.js';
import { testEventStoreContract } from '../eventStore.features.js';
import { createInMemoryEventStoreData, getInMemoryEventStore } from './inMemoryEventStore.js';

// compile-time conformance: the adapter is an EventStore
const _conforms: (...a: Parameters<typeof getInMemoryEventStore>) => EventStore = getInMemoryEventStore;

testEventStoreContract('InMemoryEventStore', {
  open: async () => {
    const data = createInMemoryEventStoreData();
    let store = getInMemoryEventStore(data);
    return {
      get store() {
        return store;
      },
      reopen: async () => {
        await store.close();
        store = getInMemoryEventStore(data);
        return store;
      },
      dispose: () => store.close(),
    };
  },
});
