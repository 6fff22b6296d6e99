/**
 * A task run every `everyMs` in the background, never two runs at once (a run that outlasts the interval delays the
 * next, it is not stacked), its failures handed to `onError` and tried again at the next interval. `stop` clears the
 * timer and waits for a run under way, so a service's stop does not close a client a run still uses.
 */
export interface PeriodicTask {
  stop(): Promise<void>;
}

export const startPeriodicTask = (everyMs: number, run: () => Promise<void>, onError: (err: unknown) => void): PeriodicTask => {
  let running: Promise<void> | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const schedule = (): void => {
    if (stopped) return;
    // unref: a pending run never keeps the process alive on its own
    timer = setTimeout(() => {
      running = run()
        .catch(onError)
        .finally(() => {
          running = undefined;
          schedule();
        });
    }, everyMs).unref();
  };
  schedule();
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
};
