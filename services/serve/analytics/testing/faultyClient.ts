import type { AnalyticsClient } from '../clickhouseClient.js';

/**
 * The same engine behind a client whose inserts fail while `fault` returns an error for them (an injected
 * disk full, a refused row). Everything else goes to the real client.
 */
export const faultyClient = (ac: AnalyticsClient, fault: (params: { table: string; values: unknown }) => Error | undefined): AnalyticsClient => {
  const client = new Proxy(ac.client, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key);
      if (key === 'insert') {
        return async (params: { table: string; values: unknown }) => {
          const error = fault(params);
          if (error !== undefined) throw error;
          return target.insert(params as Parameters<typeof target.insert>[0]);
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { ...ac, client };
};

/** an error as ClickHouse reports it: a numeric code and a message */
export const engineError = (code: string, message: string): Error => Object.assign(new Error(message), { code });
