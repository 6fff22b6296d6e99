import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../testing/service.js';

/** the corpus history S1 (recorded on 6.12: iommufd and the VFIO cdev), as the service stores it */
const s01 = readFileSync('replay/corpus/s01-singleton-happy-path.jsonl', 'utf8')
  .split('\n')
  .filter((l) => l.startsWith('{'));

describe('POST /v1/hosts/:host/replay with a release stage (issue 19)', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService();
    const res = await svc.call('/v1/events', { method: 'POST', as: 'ingest', headers: { 'content-type': 'application/x-ndjson' }, body: s01.join('\n') });
    expect(res.status).toBe(200);
  });
  afterAll(async () => {
    await svc.dispose();
  });

  it('issue 19: given a host recorded on 6.12, when replayed as upstream@6.1, then the report names the stage, the release it judged the host as, and the missing /dev/iommu as root cause', async () => {
    const res = await svc.call('/v1/hosts/lab-s1/replay?variant=upstream@6.1&compareWith=upstream', { method: 'POST', as: 'read' });
    expect(res.status).toBe(200);
    const report = (await res.json()) as {
      variant: string;
      compareWith: string;
      hosts: { results: { release?: { judgedAs: string }; divergences: { rule: string; consequenceOf?: unknown }[] }[] }[];
    };
    expect(report.variant).toBe('upstream@6.1');
    expect(report.compareWith).toBe('upstream');
    const [stage, recorded] = report.hosts[0]!.results;
    expect(stage!.release!.judgedAs).toBe("6.1 (the stage's release; the host records 6.12.0)");
    expect(stage!.divergences[0]).toMatchObject({ rule: 'release.iommufd.no-node' });
    expect(stage!.divergences[0]!.consequenceOf).toBeUndefined();
    expect(recorded!.release!.judgedAs).toBe('6.12.0 (recorded)');
  });

  it('issue 19: given a stage that is not one, then 400 naming query.variant and why', async () => {
    const res = await svc.call('/v1/hosts/lab-s1/replay?variant=stage2@6.1', { method: 'POST', as: 'read' });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: { path: string; message: string }[] };
    expect(body.errors[0]).toEqual({ path: 'query.variant', message: '"stage2@6.1": stage2 does not decide per kernel release (only upstream does: upstream@7.3)' });
  });
});
