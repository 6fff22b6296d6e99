import type { KeyObject } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { RULES, RULE_IDS } from '../../../projections/index.js';
import { isAppError, ValidationError } from '../../../schemas/index.js';
import { backoffDelay } from '../../shared/backoff.js';
import { apiClientFromOptions, type ApiClient } from '../../shared/client/apiClient.js';
import { FINDING_SEVERITIES, UNCERTAINTY_RULES } from '../../serve/analytics/compliance.js';
import { formatTime } from '../../serve/analytics/humanize.js';
import { openCheckpoint } from '../../shared/eventStore/format/checkpoint.js';
import { PUBLIC_KEY_FILE, readPublicKey } from '../../shared/eventStore/sqlite/tamper/signing.js';
import { LEAF_V1, logLeafHash, type LeafFormat } from '../../shared/eventStore/sqlite/tamper/tlogStore.js';
import { verifyInclusion } from '../../shared/eventStore/format/merkle.js';
import { parseDurationNs } from '../../shared/time.js';
import { EXIT } from '../exitCodes.js';
import { timeOption, type RegisterCommand } from '../program.js';
import { renderReportHtml, type Inclusion, type ReportCompliance, type ReportData, type ReportFinding, type ReportSignature, type Row } from '../report/renderReport.js';
import { assertChromium, htmlToPdf } from '../report/pdf.js';

interface ReportOptions {
  from?: string;
  to?: string;
  host: string[];
  out: string;
  staleAfter?: string;
  url?: string;
  token?: string;
  chromium?: string;
  publicKey?: string;
  origin?: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];

/**
 * The API's reads, retried when the service is unavailable for a moment (a keep-alive socket closed under the
 * request, 503 from the heavy-read limit): every call here is a GET, so a retry is safe. Other errors fail at once.
 */
const retryingReads = (api: ApiClient, attempts = 4): ApiClient => ({
  ...api,
  get: async <T>(pathname: string): Promise<T> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await api.get<T>(pathname);
      } catch (e) {
        if (!(isAppError(e) && e.kind === 'unavailable') || attempt + 1 >= attempts) throw e;
        await new Promise((resolve) => setTimeout(resolve, 50 + backoffDelay(attempt, 100, 2_000, Math.random)));
      }
    }
  },
});

interface Page {
  readonly rows: Row[];
  readonly total: number;
}

/** every row of a table, page by page */
const allRows = async (api: ApiClient, name: string, q: URLSearchParams): Promise<Row[]> => {
  const out: Row[] = [];
  for (let offset = 0; ; ) {
    const page = await api.get<Page>(`/v1/analytics/tables/${name}?${q}&limit=10000&offset=${offset}`);
    out.push(...page.rows);
    offset += page.rows.length;
    if (page.rows.length === 0 || offset >= page.total) return out;
  }
};

/** every story of the violations a filter selects, page by page: a few queries for the whole report, not one per finding */
const allStories = async (api: ApiClient, q: URLSearchParams): Promise<StoryRow[]> => {
  const out: StoryRow[] = [];
  for (let offset = 0; ; ) {
    const page = await api.get<{ stories: StoryRow[]; total: number }>(`/v1/analytics/stories?${q}&limit=${STORY_PAGE}&offset=${offset}`);
    out.push(...page.stories);
    offset += page.stories.length;
    if (page.stories.length === 0 || offset >= page.total) return out;
  }
};
const STORY_PAGE = 2_000;

interface StoryRow {
  readonly violation: Row;
  readonly events: Row[];
  readonly rule: { title: string; guards: string } | null;
}

/** the key and origin the checkpoint's signature is checked against, and where the key came from */
export interface CheckpointTrust {
  readonly publicKey?: KeyObject;
  /** the log's origin the checkpoint must name (default: the one it names, said so in the report) */
  readonly origin?: string;
  readonly keySource: string;
}

/** the signed checkpoint the service serves fails its signature check: the report's evidence cannot be trusted */
export class CheckpointNotTrustedError extends Error {
  override readonly name = 'CheckpointNotTrustedError';
}

/** runs `f` over `items`, `width` at a time, keeping order */
const mapLimited = async <T, R>(items: readonly T[], width: number, f: (t: T) => Promise<R>): Promise<R[]> => {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await f(items[i] as T);
      }
    }),
  );
  return out;
};

interface InclusionProof {
  readonly position: number;
  readonly leafIndex: number;
  readonly size: number;
  readonly leaf: { readonly format?: LeafFormat; readonly stream: string; readonly revision: number; readonly event: string };
  readonly hashes: readonly string[];
}

/** fetches and checks an event's inclusion proof against the checkpoint's root */
const proveInclusion = async (api: ApiClient, position: number, checkpoint: { size: number; root: Buffer } | null): Promise<Inclusion> => {
  if (checkpoint === null) return { state: 'pending', position, reason: 'no signed checkpoint' };
  if (position > checkpoint.size) return { state: 'pending', position, reason: `after the latest signed checkpoint (${checkpoint.size} events); the next one will cover it` };
  try {
    const p = await api.get<InclusionProof>(`/v1/log/proofs/inclusion?position=${position}&size=${checkpoint.size}`);
    const leaf = logLeafHash(p.leaf.format ?? LEAF_V1, position, p.leaf.stream, p.leaf.revision, p.leaf.event);
    const ok = verifyInclusion(position - 1, checkpoint.size, leaf, p.hashes.map((h) => Buffer.from(h, 'base64')), checkpoint.root);
    return ok ? { state: 'proved', position, size: checkpoint.size, hashes: p.hashes.length } : { state: 'failed', position, reason: 'the proof does not lead to the signed root' };
  } catch (e) {
    return { state: 'failed', position, reason: (e as Error).message };
  }
};

/**
 * Checks the checkpoint's signature here, with the key and origin the auditor trusts, before any proof leans
 * on its root: a checkpoint edited or signed by another key (or naming another log) throws. Without a key the
 * root is used unchecked and the report says so.
 */
const trustCheckpoint = (note: string, trust: CheckpointTrust): { origin: string; size: number; note: string; root: Buffer; signature: ReportSignature } => {
  const named = note.split('\n')[0] ?? '';
  if (trust.publicKey === undefined) {
    const root = Buffer.from(note.split('\n')[2] ?? '', 'base64');
    return { origin: named, size: Number(note.split('\n')[1]), note, root, signature: { checked: false, reason: `no public key to check it with (${trust.keySource})` } };
  }
  const origin = trust.origin ?? named;
  const opened = openCheckpoint(note, [{ name: origin, publicKey: trust.publicKey }]);
  if (!opened.ok) throw new CheckpointNotTrustedError(`the service's signed checkpoint does not verify with the ${trust.keySource} for origin ${origin}: ${opened.reason}`);
  if (opened.value.checkpoint.origin !== origin) throw new CheckpointNotTrustedError(`the service's signed checkpoint names origin ${opened.value.checkpoint.origin}, not ${origin}`);
  const c = opened.value.checkpoint;
  return { origin: c.origin, size: c.size, note, root: c.root, signature: { checked: true, keySource: trust.keySource, originPinned: trust.origin !== undefined } };
};

/** the report's data, all through the service's API (the same figures the dashboard shows) */
export const gatherReport = async (
  api: ApiClient,
  opts: { fromNs?: bigint; toNs?: bigint; hosts: readonly string[]; staleAfter?: string; service: string; trust: CheckpointTrust },
): Promise<ReportData> => {
  const q = new URLSearchParams();
  if (opts.fromNs !== undefined) q.set('from', opts.fromNs.toString());
  if (opts.toNs !== undefined) q.set('to', opts.toNs.toString());
  for (const h of opts.hosts) q.append('host', h);
  if (opts.staleAfter !== undefined) q.set('staleAfter', opts.staleAfter);
  const compliance = await api.get<ReportCompliance>(`/v1/analytics/compliance?${q}`);
  // the tables over the period the compliance answer resolved
  const period = new URLSearchParams(q);
  period.set('from', compliance.fromNs);
  period.set('to', compliance.toNs);
  const [trends, violations] = await Promise.all([allRows(api, 'trends', period), allRows(api, 'violations', period)]);
  let note: string | null = null;
  try {
    note = (await api.get<{ checkpoint: string }>('/v1/log/checkpoint?format=json')).checkpoint;
  } catch {
    note = null;
  }
  const checkpoint = note === null ? null : trustCheckpoint(note, opts.trust);
  // the findings' stories, a page of thousands per request (findings are critical or warning, the sequence rules aside)
  const findingsQuery = new URLSearchParams(period);
  for (const s of FINDING_SEVERITIES) findingsQuery.append('severity', s);
  const stories = (await allStories(api, findingsQuery)).filter((s) => !UNCERTAINTY_RULES.includes(String(s.violation.rule)));
  const findings = await mapLimited(stories, 4, async (story): Promise<ReportFinding> => {
    const evidence = story.events.filter((e) => e.role !== 'context');
    const events = await mapLimited(evidence, 4, async (e) => ({ ...e, inclusion: await proveInclusion(api, Number(e.position), checkpoint) }));
    return { violation: story.violation, events, rule: story.rule };
  });
  return {
    generatedAt: formatTime(BigInt(Date.now()) * 1_000_000n),
    service: opts.service,
    hosts: opts.hosts,
    compliance,
    trends,
    violations,
    findings,
    checkpoint: checkpoint === null ? null : { origin: checkpoint.origin, size: checkpoint.size, note: checkpoint.note, signature: checkpoint.signature },
    rules: RULE_IDS.map((id) => RULES[id]),
  };
};

/** `iommutrail report --from --to [--host] --out report.pdf|.html`: exit 0 written, 1 some evidence failed its proof or the checkpoint is tampered */
export const registerReport: RegisterCommand = (program, run) => {
  program
    .command('report')
    .description('write a self-contained compliance report for a period (headline, trends, per host and per rule, every finding with its evidence and its inclusion in the signed log, the rule catalogue, how to verify) as PDF or HTML')
    .option('--from <time>', 'start of the period (ISO-8601 UTC, ns, or a date; default: the first event)')
    .option('--to <time>', 'end of the period, also the "as of" moment (default: the latest event)')
    .option('--host <host>', 'only these hosts (repeatable, or comma separated)', collect, [])
    .requiredOption('--out <file>', 'report.pdf (rendered by Debian chromium) or report.html')
    .option('--stale-after <duration>', 'a collector silent this long is stale: its host-days are not assessed (30m, 6h, 2d; default 24h)')
    .option('--chromium <path>', 'the chromium binary for PDF (default: $IOMMUTRAIL_CHROMIUM or /usr/bin/chromium)')
    .option('--public-key <pem>', "the store's public key you trust, to check the signed checkpoint's signature (default: iommutrail-signing.pub in $IOMMUTRAIL_DATA_DIR or .data)")
    .option('--origin <origin>', "the log's origin you trust (default: the one the checkpoint names)")
    .option('--url <url>', 'service URL (default: $IOMMUTRAIL_URL or http://127.0.0.1:8377)')
    .option('--token <token>', 'API token with the read role (default: $IOMMUTRAIL_TOKEN)')
    .action((opts: ReportOptions) =>
      run(async () => {
        const kind = extname(opts.out).toLowerCase();
        if (kind !== '.pdf' && kind !== '.html') throw new ValidationError(`--out: expected a file ending in .pdf or .html, got ${JSON.stringify(opts.out)}`, [{ path: 'out', message: 'extension' }]);
        if (opts.staleAfter !== undefined && parseDurationNs(opts.staleAfter) === undefined) {
          throw new ValidationError(`--stale-after: expected a duration such as 30m, 6h or 2d, got ${JSON.stringify(opts.staleAfter)}`, [{ path: 'stale-after', message: 'duration' }]);
        }
        const fromNs = timeOption('--from', opts.from);
        const toNs = timeOption('--to', opts.to);
        if (fromNs !== undefined && toNs !== undefined && fromNs > toNs) throw new ValidationError('--from: after --to', [{ path: 'from', message: 'after --to' }]);
        const chromium = opts.chromium ?? process.env.IOMMUTRAIL_CHROMIUM ?? '/usr/bin/chromium';
        // before any work: a PDF needs chromium
        if (kind === '.pdf') assertChromium(chromium);
        const api = retryingReads(apiClientFromOptions(opts));
        const beside = join(process.env.IOMMUTRAIL_DATA_DIR ?? '.data', PUBLIC_KEY_FILE);
        const trust: CheckpointTrust =
          opts.publicKey !== undefined
            ? { publicKey: readPublicKey(opts.publicKey), keySource: `pinned key ${opts.publicKey}`, ...(opts.origin !== undefined ? { origin: opts.origin } : {}) }
            : existsSync(beside)
              ? { publicKey: readPublicKey(beside), keySource: `key in the data folder ${beside}`, ...(opts.origin !== undefined ? { origin: opts.origin } : {}) }
              : { keySource: 'no --public-key given and none in the data folder', ...(opts.origin !== undefined ? { origin: opts.origin } : {}) };
        let data: ReportData;
        try {
          data = await gatherReport(api, {
            ...(fromNs !== undefined ? { fromNs } : {}),
            ...(toNs !== undefined ? { toNs } : {}),
            hosts: opts.host,
            ...(opts.staleAfter !== undefined ? { staleAfter: opts.staleAfter } : {}),
            service: opts.url ?? process.env.IOMMUTRAIL_URL ?? 'http://127.0.0.1:8377',
            trust,
          });
        } catch (e) {
          if (!(e instanceof CheckpointNotTrustedError)) throw e;
          // tampered: no report is written whose evidence leans on this checkpoint
          process.stderr.write(`report: TAMPERED: ${e.message}; no report written\n`);
          return EXIT.finding;
        }
        if (data.checkpoint !== null && !data.checkpoint.signature.checked) process.stderr.write(`warning: the signed checkpoint's signature was not checked: ${data.checkpoint.signature.reason}\n`);
        const html = renderReportHtml(data);
        if (kind === '.html') writeFileSync(opts.out, html);
        else await htmlToPdf(html, opts.out, chromium);
        const events = data.findings.flatMap((f) => f.events);
        const failed = events.filter((e) => e.inclusion.state === 'failed').length;
        const h = data.compliance.headline;
        process.stdout.write(
          `report ${opts.out}: ${h.hosts} host(s), ${h.compliant} compliant, ${h.nonCompliant} non-compliant, ${h.notAssessed} not assessed; ` +
            `${data.findings.length} finding(s), ${events.length - failed} of ${events.length} evidence event(s) proved or pending, ${failed} failed\n`,
        );
        for (const w of data.compliance.warnings) process.stderr.write(`warning: ${w}\n`);
        return failed > 0 ? EXIT.finding : EXIT.ok;
      }),
    );
};
