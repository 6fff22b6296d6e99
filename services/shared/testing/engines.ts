import { describe } from 'vitest';

/**
 * Gate for tests that need a real engine (Kafka broker, chdb, chromium, EventStoreDB). When the engine is
 * missing the suite is skipped with a plain reason; with CI=true a missing engine fails the run instead,
 * so CI can never go green on skipped engine tests.
 */
export const describeWithEngine = (engine: string, availability: { available: boolean; reason?: string }, title: string, body: () => void): void => {
  if (availability.available) {
    describe(title, body);
    return;
  }
  const reason = `${engine} not available: ${availability.reason ?? 'unknown reason'}`;
  if (process.env.CI === 'true') {
    describe(title, () => {
      throw new Error(`CI=true and ${reason}; engine tests must not be skipped in CI`);
    });
    return;
  }
  console.warn(`SKIPPED ${title}: ${reason}`);
  describe.skip(`${title} [skipped: ${reason}]`, body);
};
