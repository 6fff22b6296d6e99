import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseEventJson } from '../../schemas/index.js';
import { main } from '../cli/main.js';
import { readCorpusIndex } from './corpus/loadCorpus.js';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

describe('iommutrail diagnose (CLI)', () => {
  let out: string;
  beforeEach(() => {
    out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
  });
  afterEach(() => vi.restoreAllMocks());

  it.each([
    ['forum-rtx2080-group1.txt', 1, 'not-viable', [1]],
    ['mangled-lspci.txt', 1, 'not-viable', [15]],
    ['qemu-only-with-dmesg.txt', 1, 'not-viable', [13]],
    ['kubevirt-launcher.json.txt', 1, 'not-viable', [46]],
    ['ls-groups-viable.txt', 0, 'viable', [46]],
    ['legacy-pci-stub.txt', 0, 'viable', []],
  ] as const)('given the fixture %s, when diagnosed with --json, then it exits %i with verdict %s', async (name, exit, verdict, wanted) => {
    expect(await main(['diagnose', fixture(name), '--json'])).toBe(exit);
    const json = JSON.parse(out) as { verdict: string; groups: { group: number; wanted: boolean }[] };
    expect(json.verdict).toBe(verdict);
    expect(json.groups.filter((g) => g.wanted).map((g) => g.group)).toEqual(wanted);
  });

  it('given the KubeVirt error and the ls listing pasted together, when diagnosed, then the blocks combine into a viable verdict', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'diag-'));
    const both = join(dir, 'both.txt');
    writeFileSync(both, `${readFileSync(fixture('kubevirt-launcher.json.txt'), 'utf8')}\n${readFileSync(fixture('ls-groups-viable.txt'), 'utf8')}`);
    expect(await main(['diagnose', both])).toBe(0);
    expect(out).toContain('verdict: VIABLE for group 46');
  });

  it('given the forum paste, when diagnosed for humans, then it names the blockers and the unbind commands', async () => {
    await main(['diagnose', fixture('forum-rtx2080-group1.txt')]);
    expect(out).toContain('blocked by: 0000:01:00.1, 0000:01:00.2, 0000:01:00.3');
    expect(out).toContain('echo 0000:01:00.1 | sudo tee /sys/bus/pci/drivers/snd_hda_intel/unbind');
    expect(out).toContain('lspci -nnk -s 0000:00:01.0');
  });

  it('given --emit-events, when diagnosed, then every written line is a valid import event', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'diag-')), 'events.jsonl');
    await main(['diagnose', fixture('forum-rtx2080-group1.txt'), '--emit-events', file, '--host', 'desk']);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const events = lines.map((l) => parseEventJson(l));
    expect(events.every((r) => r.ok && r.value.source === 'import' && r.value.host === 'desk')).toBe(true);
    expect(lines.length).toBeGreaterThanOrEqual(6);
  });

  it('issue 22: not viable exits 1, unknown exits 5 (not 1 as before), and --help documents the codes', async () => {
    const corpus = (name: string): string => fileURLToPath(new URL(`./corpus/${name}.txt`, import.meta.url));
    expect(await main(['diagnose', corpus('gh-lxc-incus-3422')])).toBe(1);
    out = '';
    expect(await main(['diagnose', corpus('gh-uwzis-gpu-passthrough-manager-21')])).toBe(5);
    expect(out).toContain('verdict: UNKNOWN');
    expect(out).toContain('lspci -nnk -s 0000:09:00.2');
    out = '';
    await main(['diagnose', '--help']);
    expect(out).toContain('5 unknown');
  });

  it.each(readCorpusIndex().cases.map((c) => [c.case, c.expected.verdict] as const))(
    'issue 22: the corpus case %s exits with the code of its verdict %s (0 viable, 1 not viable, 5 unknown)',
    async (name, verdict) => {
      const code = { viable: 0, 'not-viable': 1, unknown: 5 }[verdict];
      expect(await main(['diagnose', fileURLToPath(new URL(`./corpus/${name}.txt`, import.meta.url))])).toBe(code);
    },
  );

  it('given a missing file or prose only, when diagnosed, then it exits 2', async () => {
    expect(await main(['diagnose', '/nonexistent/paste.txt'])).toBe(2);
    const prose = join(mkdtempSync(join(tmpdir(), 'diag-')), 'prose.txt');
    writeFileSync(prose, 'my vm does not boot\nplease help\n');
    expect(await main(['diagnose', prose])).toBe(2);
  });
});
