// the event store: the port, its adapters and the tamper-evidence tools
export type {
  AppendConflict,
  AppendOptions,
  AppendOutcome,
  AppendResult,
  EventStore,
  ExpectedRevision,
  ReadAllOptions,
  ReadByIndexOptions,
  ReadStreamOptions,
  SubscribeOptions,
  StoredEventRef,
  StreamAppend,
  StreamAppendResult,
  Subscription,
} from './eventStore.js';
export { appendEach, appendTogether } from './eventStore.js';
export { getSqliteEventStore, type SqliteDurability, type SqliteEventStore, type SqliteEventStoreOptions } from './sqlite/sqliteEventStore.js';
export { createInMemoryEventStoreData, getInMemoryEventStore, type InMemoryEventStoreData } from './inMemory/inMemoryEventStore.js';
export { indexKeysOf, membershipChangeOf, type IndexKeys, type MembershipChange } from './indexKeys.js';
export { connectEsdbEventStore, getEsdbEventStore, type EsdbEventStoreOptions } from './esdb/esdbEventStore.js';
export { verifySqliteStore } from './sqlite/tamper/verifyStore.js';
export { exportBundle, verifyBundle, type ExportOptions, type ExportResult } from './sqlite/tamper/bundle.js';
export { formatFinding, type FindingKind, type VerifyFinding, type VerifyReport } from './sqlite/tamper/findings.js';
