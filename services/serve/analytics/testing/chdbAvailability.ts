import { createRequire } from 'node:module';

/** chdb ships its engine inside the npm package: it is available when its native addon loads */
export const chdbAvailability = (): { available: boolean; reason?: string } => {
  try {
    createRequire(import.meta.url)('chdb');
    return { available: true };
  } catch (e) {
    return { available: false, reason: `the chdb package does not load (${e instanceof Error ? e.message : String(e)})` };
  }
};
