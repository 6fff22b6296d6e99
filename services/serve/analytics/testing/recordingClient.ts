import type { AnalyticsClient } from '../clickhouseClient.js';

/** the same engine behind a client that notes the SQL text of every query it sends in `sent` (in order) */
export const recordingClient = (ac: AnalyticsClient, sent: string[]): AnalyticsClient => {
  const client = new Proxy(ac.client, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key);
      if (key === 'query') {
        return (params: Parameters<typeof target.query>[0]) => {
          sent.push(params.query);
          return target.query(params);
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { ...ac, client };
};
