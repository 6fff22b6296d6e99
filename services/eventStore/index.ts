// the event store: the port, its adapters and the tamper-evidence tools
export type {
  AppendOptions,
  AppendResult,
  EventStore,
  ExpectedRevision,
  ReadAllOptions,
  ReadByIndexOptions,
  ReadStreamOptions,
  SubscribeOptions,
  Subscription,
} from './eventStore.js';
export { getSqliteEventStore, type SqliteDurability, type SqliteEventStore, type SqliteEventStoreOptions } from './sqlite/sqliteEventStore.js';
export { indexKeysOf, membershipChangeOf, type IndexKeys, type MembershipChange } from './indexKeys.js';
