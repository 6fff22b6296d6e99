import { describe, expect, it } from 'vitest';
import { isValidationError } from '../../schemas/index.js';
import { replayHistory } from '../replayer.js';
import { formatReport } from '../report.js';
import { CORPUS } from '../testing/scenarios.js';
import { defineStage } from './dataStage.js';

const history = (name: string) => CORPUS.find((s) => s.name === name)!.events;
const why = { reason: 'a reason', source: 'a source' };

/** the one-line message a stage file's problem gives (what the CLI prints before exiting 2) */
const refusal = (input: unknown): string => {
  try {
    defineStage(input, 'my-stage.yaml');
  } catch (e) {
    expect(isValidationError(e)).toBe(true);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error('the stage was accepted');
};
const stage = (rules: object, base = 'upstream') => ({ name: 'my-stage', base, description: 'a test stage', rules });

describe('stages as data > checked when loaded', () => {
  it('issue 19: given an unknown rule id, then the error names the field, the id, and the nearest rule of the base', () => {
    expect(refusal(stage({ override: [{ id: 'upstream.claim.ownd', errno: 'EBUSY', ...why }] }))).toBe(
      'my-stage.yaml: rules.override[0] (upstream.claim.ownd).id: upstream has no rule "upstream.claim.ownd"; did you mean "upstream.claim.owned"?',
    );
    expect(refusal(stage({ remove: [{ id: 'nothing.like.it', ...why }] }))).toBe('my-stage.yaml: rules.remove[0] (nothing.like.it).id: upstream has no rule "nothing.like.it"');
  });

  it('issue 19: given a wrong field, then the error names the rule id and the field', () => {
    expect(refusal(stage({ override: [{ id: 'upstream.claim.owned', errno: 'EBUSY', ...why }, { id: 'upstream.bind.ok', errno: 'EFOO', ...why }] }))).toBe(
      'my-stage.yaml: rules.override[1] (upstream.bind.ok).errno: expected an errno name such as EPERM or EBUSY, got "EFOO"',
    );
    expect(refusal(stage({ add: [{ id: 'site.x', operation: 'bindIommufd', errno: 'EPERM', text: 't', source: 's' }] }))).toContain('rules.add[0] (site.x).reason:');
    expect(refusal(stage({ add: [{ id: 'site.x', operation: 'bindIommfd', errno: 'EPERM', text: 't', ...why }] }))).toContain('rules.add[0] (site.x).operation');
    expect(refusal(stage({ add: [{ id: 'site.x', operation: 'bindIommufd', when: ['group-has-bridges'], errno: 'EPERM', text: 't', ...why }] }))).toContain(
      'rules.add[0] (site.x).when[0]: unknown condition "group-has-bridges"; did you mean "group-has-bridge"?',
    );
    expect(refusal(stage({ override: [{ id: 'upstream.claim.owned', ...why }] }))).toContain('rules.override[0] (upstream.claim.owned).errno: an override changes the errno, the text, or both');
    expect(refusal(stage({ overide: [] }))).toContain('my-stage.yaml: rules: Unrecognized key: "overide"');
  });

  it('issue 19: given rules that contradict the base or each other, then each is refused with the reason', () => {
    expect(refusal(stage({ remove: [{ id: 'upstream.bind.ok', ...why }] }))).toContain('rules.remove[0] (upstream.bind.ok).id: rule upstream.bind.ok is not a refusal (it has no errno)');
    expect(refusal(stage({ add: [{ id: 'upstream.claim.owned', operation: 'bindIommufd', errno: 'EPERM', text: 't', ...why }] }))).toContain('upstream already has rule upstream.claim.owned: override it');
    expect(
      refusal(stage({ override: [{ id: 'upstream.claim.owned', errno: 'EBUSY', ...why }], remove: [{ id: 'upstream.claim.owned', ...why }] })),
    ).toContain('rules.remove[0] (upstream.claim.owned).id: rule upstream.claim.owned is named twice');
    expect(refusal(stage({ add: [{ id: 'site.x', operation: ['bindIommufd', 'allocIoas'], when: ['group-has-bridge'], errno: 'EPERM', text: 't', ...why }] }))).toContain(
      "rules.add[0] (site.x).when: condition group-has-bridge needs the operation's group, and allocIoas names none",
    );
  });

  it('issue 19: given a wrong name or base, then the error says which', () => {
    expect(refusal({ ...stage({}), name: 'upstream' })).toContain('my-stage.yaml: name: upstream is a built-in variant');
    expect(refusal({ ...stage({}), name: 'My Stage' })).toContain('my-stage.yaml: name: a stage name is lower-case');
    expect(refusal(stage({}, 'upstream@9.1'))).toContain('my-stage.yaml: base: "upstream@9.1": the upstream model covers 5.19 to 7.3');
    expect(refusal(stage({}, 'stage4'))).toContain('my-stage.yaml: base: unknown variant "stage4"');
    expect(refusal('just text')).toContain('my-stage.yaml: (stage): ');
  });
});

describe('stages as data > decided and reported like a built-in variant', () => {
  it('issue 19: given an added refusal whose conditions hold, then the stage refuses first, with its errno, and the report shows its reason and source', async () => {
    const strict = defineStage(
      stage({ add: [{ id: 'site.bind.group-spans-bridge', operation: ['bindIommufd'], when: ['group-has-bridge'], errno: 'EPERM', text: 'the group spans a bridge', reason: 'peer to peer', source: 'PT-7' }] }),
      'x.yaml',
    );
    const report = await replayHistory({ variant: strict, events: history('s29-bridge-in-group') });
    const [first] = report.hosts[0]!.results[0]!.divergences;
    expect(report.variant).toBe('my-stage');
    expect(first).toMatchObject({ event: { seq: 6 }, recorded: { ok: true }, replayed: { ok: false, errno: 'EPERM' }, rule: 'site.bind.group-spans-bridge' });
    expect(first!.ruleText).toBe('the group spans a bridge [stage my-stage: peer to peer; source: PT-7]');
    expect(formatReport(report)).toContain('host lab-s29 [my-stage] judged as 6.12.0 (recorded): 2 divergence(s)');
    // a group without a bridge: the condition does not hold, the base decides
    expect((await replayHistory({ variant: strict, events: history('s01-singleton-happy-path') })).summary.divergences).toBe(0);
  });

  it('issue 19: given an override of a refusal errno, of a success, and a removed refusal, then each call is answered as the stage says', async () => {
    const s13 = history('s13-second-member-joins');
    // seq 10: a second ctx binds a member of a group the first owns (upstream.claim.owned, -EPERM)
    const errno = await replayHistory({ variant: defineStage(stage({ override: [{ id: 'upstream.claim.owned', errno: 'EBUSY', ...why }] }), 'x'), events: s13 });
    expect(errno.hosts[0]!.results[0]!.divergences[0]).toMatchObject({ event: { seq: 10 }, replayed: { ok: false, errno: 'EBUSY' }, rule: 'upstream.claim.owned' });
    expect(errno.hosts[0]!.results[0]!.divergences[0]!.ruleText).toContain('[stage my-stage, -EBUSY instead of -EPERM: a reason; source: a source]');
    // seq 11: a bind the base accepts (upstream.bind.ok): refused now, and it changes nothing
    const success = await replayHistory({ variant: defineStage(stage({ override: [{ id: 'upstream.bind.ok', errno: 'EACCES', ...why }] }), 'x'), events: s13 });
    expect(success.hosts[0]!.results[0]!.divergences[0]).toMatchObject({ event: { seq: 11 }, replayed: { ok: false, errno: 'EACCES' } });
    expect(success.hosts[0]!.results[0]!.finalGroups['7']!.ownerCnt).toBe(1);
    // seq 10 again: without the check the call is accepted, and the report says the state does not follow
    const removed = await replayHistory({ variant: defineStage(stage({ remove: [{ id: 'upstream.claim.owned', ...why }] }), 'x'), events: s13 });
    const [accepted] = removed.hosts[0]!.results[0]!.divergences;
    expect(accepted).toMatchObject({ event: { seq: 10 }, recorded: { ok: false, errno: 'EPERM' }, replayed: { ok: true }, rule: 'upstream.claim.owned' });
    expect(accepted!.ruleText).toMatch(/^removed by stage my-stage: the call is accepted, and what it would change is not modelled \(the state does not follow\); the base refused with -EPERM: /);
  });

  it('issue 19: given a text-only override, then the answers stay the base`s and the text is the stage`s', async () => {
    const worded = defineStage(stage({ override: [{ id: 'upstream.claim.owned', text: 'runbook PT-3: move the whole group to vfio-pci', ...why }] }), 'x');
    expect(worded.rules['upstream.claim.owned']).toMatchObject({ errno: 'EPERM', text: 'runbook PT-3: move the whole group to vfio-pci [stage my-stage: a reason; source: a source]' });
    expect((await replayHistory({ variant: worded, events: history('s13-second-member-joins') })).summary.divergences).toBe(0);
  });

  it('issue 19: given a release base, then every host is judged as that release and the report says so', async () => {
    const old = defineStage(stage({}, 'upstream@6.1'), 'x');
    const report = await replayHistory({ variant: old, events: history('s01-singleton-happy-path') });
    expect(report.hosts[0]!.results[0]!.release?.judgedAs).toBe("6.1 (the stage's release; the host records 6.12.0)");
    expect(report.hosts[0]!.results[0]!.divergences[0]!.rule).toBe('release.iommufd.no-node');
    // a seed stage as base: no release, decided as stage2
    const seed = await replayHistory({ variant: defineStage(stage({}, 'stage2'), 'x'), events: history('s07-replace') });
    const builtIn = await replayHistory({ variant: 'stage2', events: history('s07-replace') });
    expect(seed.hosts[0]!.results[0]!.divergences).toEqual(builtIn.hosts[0]!.results[0]!.divergences);
    expect(seed.hosts[0]!.results[0]!.release).toBeUndefined();
  });
});
