import { defineFigure } from '../harness.js';
import { measureAnalytics } from './analytics.bench.js';

/**
 * Issue 23: the analytics sink and the dashboard's full load on a fleet of 100,000 hosts (the `analytics` figure,
 * whose fleets have 10 to 200 hosts, measured the same way): every host has its rows in each hosts × days table and
 * panel, so what grows with the hosts rather than the events shows here.
 */
export default defineFigure({
  name: 'analytics-hosts',
  issue: 23,
  sizes: { quick: [1e4], full: [2e5, 1e6, 1e7] },
  measure: (size, ctx) => measureAnalytics(size, ctx.mode === 'quick' ? 1_000 : 100_000, ctx),
});
