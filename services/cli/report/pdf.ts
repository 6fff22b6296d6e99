import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnavailableError } from '../../../schemas/index.js';

/**
 * Prints a self-contained HTML page to PDF with Debian's chromium, headless, through playwright-core's
 * `page.pdf` (A4, backgrounds kept, page numbers in the footer). A missing chromium is `unavailable` (exit 69).
 */
export const assertChromium = (chromiumPath: string): void => {
  if (!existsSync(chromiumPath)) throw new UnavailableError(`chromium not found at ${chromiumPath} (apt-get install chromium, or --chromium <path>); --out report.html needs none`);
};

export const htmlToPdf = async (html: string, out: string, chromiumPath: string): Promise<void> => {
  assertChromium(chromiumPath);
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'iommutrail-report-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await context.newPage();
    // the page loads nothing from outside: setContent waits for its own (inline) resources only
    await page.setContent(html, { waitUntil: 'load' });
    await page.pdf({
      path: out,
      format: 'A4',
      printBackground: true,
      margin: { top: '14mm', bottom: '16mm', left: '12mm', right: '12mm' },
      displayHeaderFooter: true,
      headerTemplate: '<span></span>',
      footerTemplate: '<div style="font-size:8px;width:100%;text-align:center;color:#5a6375">iommutrail compliance report · page <span class="pageNumber"></span> of <span class="totalPages"></span></div>',
    });
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
};
