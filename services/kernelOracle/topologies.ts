import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { isRuleId } from '../../projections/index.js';
import { RELEASE_FEATURES, type Feature } from '../../projections/kernel/releases.js';

/** deploy/kernel-oracle: the build scripts, topologies.json, the guest program and the scenarios */
export const ORACLE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../deploy/kernel-oracle');

const PCI = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/;

export const MachineSchema = z.object({
  name: z.string().regex(/^[a-z0-9-]+$/),
  description: z.string(),
  qemu: z.array(z.string()),
  append: z.string(),
  capabilities: z.object({ interruptRemapping: z.boolean(), allowUnsafeInterrupts: z.boolean() }),
  roles: z.record(z.string().regex(/^[a-z0-9]+$/), z.string().regex(PCI)),
  /**
   * what the machine offers a scenario besides its devices (name → why), which `# requires:` may name like a role:
   * `iommufd-mock`, the kernel's CONFIG_IOMMUFD_TEST mock devices, probe only where no other IOMMU registered
   * without a firmware node (drivers/iommu/iommu.c:__iommu_probe_device; on VT-d intel-iommu claims and refuses them)
   */
  provides: z.record(z.string().regex(/^[a-z0-9-]+$/), z.string().min(1)).default({}),
  /**
   * violation rules the machine's own configuration raises whatever the scenario (rule id → why), left out of
   * the comparison with the scenario's intended mistakes (assert 4)
   */
  intendedFindings: z.record(z.string().refine((r: string): boolean => isRuleId(r), 'not a rule id of projections/rules.ts'), z.string().min(1)).default({}),
  /**
   * rules whose intended mistakes cannot happen on this machine (rule id → why: e.g. every bind is refused, so no
   * group is ever user-owned): dropped from the intended side only, so a finding of them raised here still fails
   */
  unreachableFindings: z.record(z.string().refine((r: string): boolean => isRuleId(r), 'not a rule id of projections/rules.ts'), z.string().min(1)).default({}),
});
export type Machine = z.infer<typeof MachineSchema>;

export const TopologiesSchema = z.object({ common: z.array(z.string()), machines: z.array(MachineSchema).min(1) });
export type Topologies = z.infer<typeof TopologiesSchema>;

export const loadTopologies = (file = join(ORACLE_DIR, 'topologies.json')): Topologies => TopologiesSchema.parse(JSON.parse(readFileSync(file, 'utf8')));

export interface Scenario {
  readonly name: string;
  readonly title: string;
  /** the roles (devices) it needs: it runs on every machine that has them all */
  readonly requires: readonly string[];
  /** the step lines (what the guest runs), for counts */
  readonly steps: number;
  readonly mistakes: number;
  /** the kernel features (projections/kernel/releases.ts) it exercises: on a release without one, its `raises` do not apply */
  readonly features: readonly Feature[];
  /** the violations each deliberate mistake must raise (`! step  # raises RULE[, RULE]`), by file line */
  readonly raises: readonly { readonly line: number; readonly rule: string }[];
}

/** a scenario file's header (`# title:`, `# requires:`) and its step count */
export const parseScenario = (name: string, text: string): Scenario => {
  const header = (key: string): string | undefined => new RegExp(`^#\\s*${key}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const all = text.split('\n').map((l) => l.trim());
  const lines = all.filter((l) => l !== '' && !l.startsWith('#'));
  const requires = (header('requires') ?? '').split(/\s+/).filter(Boolean);
  const title = header('title');
  if (title === undefined) throw new Error(`scenario ${name}: no "# title:" line`);
  const features = (header('features') ?? '').split(/\s+/).filter(Boolean);
  for (const f of features) if (!(f in RELEASE_FEATURES)) throw new Error(`scenario ${name}: "# features:" names ${f}, not a feature of projections/kernel/releases.ts`);
  const raises: { line: number; rule: string }[] = [];
  all.forEach((l, i) => {
    const m = /^(!?)[^#]+#\s*raises\s+(.+)$/.exec(l);
    if (!m) return;
    if (m[1] !== '!') throw new Error(`scenario ${name} line ${i + 1}: only a deliberate mistake (!) may name what it raises`);
    for (const rule of m[2]!.split(/[\s,]+/).filter(Boolean)) {
      if (!isRuleId(rule)) throw new Error(`scenario ${name} line ${i + 1}: ${rule} is not a rule id of projections/rules.ts`);
      raises.push({ line: i + 1, rule });
    }
  });
  return { name, title, requires, steps: lines.length, mistakes: lines.filter((l) => l.startsWith('!')).length, features: features as Feature[], raises };
};

export const loadScenarios = (dir = join(ORACLE_DIR, 'scenarios')): Scenario[] =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.scn'))
    .sort()
    .map((f) => parseScenario(basename(f, '.scn'), readFileSync(join(dir, f), 'utf8')));

export const scenariosFor = (machine: Machine, scenarios: readonly Scenario[]): Scenario[] =>
  scenarios.filter((s) => s.requires.every((r) => r in machine.roles || r in machine.provides));

/**
 * ORACLE_SCENARIOS for the test suite (`s17-two-device-fds-compat,s18-two-device-fds-type1`): boot with those
 * scenarios only, e.g. to judge one model fix without every boot; unset or empty, every scenario. A name that is no
 * scenario is an error naming it (a typo must not pass as a run of nothing).
 */
export const scenarioFilterFromEnv = (value: string | undefined, scenarios: readonly Scenario[]): string[] | undefined => {
  const names = (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) return undefined;
  const unknown = names.filter((n) => !scenarios.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`ORACLE_SCENARIOS: ${unknown.join(', ')} ${unknown.length === 1 ? 'is no scenario' : 'are no scenarios'} of deploy/kernel-oracle/scenarios`);
  return names;
};
