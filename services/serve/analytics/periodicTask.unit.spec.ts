import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startPeriodicTask } from './periodicTask.js';

describe('analytics > periodic task (the pre-aggregate compaction in serve)', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('given a task every 1 s, when 3.5 s pass, then it ran 3 times and not before its first interval', async () => {
    let runs = 0;
    const task = startPeriodicTask(1_000, async () => void (runs += 1), () => {});
    await vi.advanceTimersByTimeAsync(999);
    expect(runs).toBe(0);
    await vi.advanceTimersByTimeAsync(2_501);
    expect(runs).toBe(3);
    await task.stop();
  });

  it('given a run that outlasts the interval, then the next waits for it (never two at once)', async () => {
    let inFlight = 0;
    let most = 0;
    let runs = 0;
    const task = startPeriodicTask(100, async () => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 350));
      inFlight -= 1;
      runs += 1;
    }, () => {});
    await vi.advanceTimersByTimeAsync(2_000);
    expect(most).toBe(1);
    // each run takes its interval plus 350 ms
    expect(runs).toBe(4);
    const stopping = task.stop();
    await vi.advanceTimersByTimeAsync(350);
    await stopping;
  });

  it('given a failing run, then onError has its error and the task runs again at the next interval', async () => {
    const errors: unknown[] = [];
    let runs = 0;
    const task = startPeriodicTask(100, async () => {
      runs += 1;
      if (runs === 1) throw new Error('engine away');
    }, (err) => errors.push(err));
    await vi.advanceTimersByTimeAsync(250);
    expect(runs).toBe(2);
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe('engine away');
    await task.stop();
  });

  it('given a run under way, when stopped, then stop waits for it and no run starts after', async () => {
    let finished = false;
    let runs = 0;
    const task = startPeriodicTask(100, async () => {
      runs += 1;
      await new Promise((r) => setTimeout(r, 500));
      finished = true;
    }, () => {});
    await vi.advanceTimersByTimeAsync(150);
    const stopping = task.stop();
    await vi.advanceTimersByTimeAsync(500);
    await stopping;
    expect(finished).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(runs).toBe(1);
  });
});
