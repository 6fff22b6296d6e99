/** polls `condition` until it holds; throws naming `what` (and the last value seen) after `timeoutMs` */
export const waitFor = async <T>(what: string, probe: () => Promise<T> | T, condition: (value: T) => boolean, timeoutMs = 45_000, everyMs = 50): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (condition(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
};
