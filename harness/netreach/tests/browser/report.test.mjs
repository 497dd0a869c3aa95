// Loads netreach's HTML report in Chromium and checks it as a person would use it.
// Run by harness/netreach/tests/browser.rs (NETREACH_BROWSER_TESTS=1), which writes the reports
// and expect.json (what the page must show), then: node report.test.mjs <expect.json>.
// Exits non-zero on the first failed check. Prints a `BENCH {…}` line with timings.
import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const E = JSON.parse(readFileSync(process.argv[2], 'utf8'));
let checks = 0;
function check(cond, msg) {
  checks++;
  if (!cond) throw new Error('FAILED: ' + msg);
}
function eq(got, want, msg) {
  check(JSON.stringify(got) === JSON.stringify(want), `${msg}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

const profile = mkdtempSync(join(tmpdir(), 'netreach-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: E.chromium,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1440, height: 900 },
  acceptDownloads: true,
});
const failures = [];
const requests = [];
context.on('request', (r) => requests.push(r.url()));

async function open(file) {
  const url = pathToFileURL(file).href;
  const page = await context.newPage();
  page.on('pageerror', (e) => failures.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') failures.push('console error: ' + m.text()); });
  const t0 = Date.now();
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => window.nrReport && window.nrReport.ready > 0);
  const wall = Date.now() - t0;
  return { page, url, wall };
}

// Time a click in the page: the script's work and the layout it forces, then to the next paint.
async function timed(page, selector) {
  return page.evaluate(async (sel) => {
    const el = document.querySelector(sel);
    if (!el) throw new Error('no ' + sel);
    const t0 = performance.now();
    el.click();
    void document.body.offsetHeight;
    const sync = performance.now() - t0;
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    return { sync: Math.round(sync * 10) / 10, paint: Math.round((performance.now() - t0) * 10) / 10 };
  }, selector);
}

const visible = (page, sel) => page.locator(sel).evaluateAll((els) =>
  els.filter((e) => e.checkVisibility({ visibilityProperty: true })).length);

let exitCode = 0;
const bench = {};
try {
  // ---- the report with every kind of cell ----------------------------------------------------
  const { page, url } = await open(E.report);
  eq(await page.textContent('#nr-context'), E.header.context, 'header: context');
  eq(await page.textContent('#nr-cluster'), E.header.cluster, 'header: cluster version');
  eq(await page.textContent('#nr-version'), E.header.version, 'header: netreach version');
  eq(await page.textContent('#nr-timeout'), E.header.timeout, 'header: probe timeout');
  eq(await page.textContent('#nr-summary'), E.summary, 'summary line');
  eq(await page.locator('details.sc').count(), E.scenarios, 'one entry per scenario');

  const B = E.broken;
  const bsc = `#nr-sc-${B.si}`;
  check(await page.locator(bsc).evaluate((d) => d.open), 'a failed scenario is open');
  eq(await page.locator(`${bsc} .steptab[aria-selected="true"]`).getAttribute('data-k'), String(B.step), 'the first failing step is shown');
  eq(await page.locator(`${bsc} td.c`).count(), B.cells, 'cell count');
  eq(await page.locator(`${bsc} td.c.s1`).count(), B.fail, 'mismatch cells');
  eq(await page.locator(`${bsc} td.c.k3`).count(), B.flaky, 'flaky cells');
  eq(await page.locator(`${bsc} td.c.k5`).count(), B.error, 'error cells');
  eq(await page.locator(`${bsc} td.c.k4`).count(), B.unsupported, 'unsupported cells');
  for (const [cls, glyph] of [['k2', '!'], ['k3', '~'], ['k4', '\u2205'], ['k5', '\u26a0']]) {
    eq(await page.locator(`${bsc} td.c.${cls}`).first().textContent(), glyph, `glyph of ${cls}`);
  }

  // Clicking a mismatch shows its repro command, with a copy button that copies it.
  const first = page.locator(`${bsc} td.c.k2`).first();
  const i = await first.getAttribute('data-i');
  await first.click();
  check(await page.locator('#nr-detail').isVisible(), 'the detail panel opens');
  eq(await page.textContent('#nr-cmd'), B.commands[i], 'the repro command of the clicked mismatch');
  const panel = await page.textContent('#nr-detail');
  check(/expected/.test(panel) && /decided by the (table|block|allow|default)/.test(panel), 'the panel names the expectation and its origin');
  check(/specification/.test(panel), 'the panel has the specification');
  await context.grantPermissions(['clipboard-read', 'clipboard-write']).catch(() => {});
  await page.click('#nr-copy');
  await page.waitForFunction(() => document.getElementById('nr-copied').textContent !== '');
  eq(await page.textContent('#nr-copied'), 'copied', 'the copy button reports success');
  const clip = await page.evaluate(() => navigator.clipboard.readText()).catch(() => null);
  if (clip !== null) eq(clip, B.commands[i], 'the clipboard holds the command');
  await page.screenshot({ path: join(E.out, 'report.png') });
  await page.keyboard.press('Escape');
  check(!(await page.locator('#nr-detail').isVisible()), 'Escape closes the panel');

  // The mismatch filter: only mismatching cells stay, passed scenarios go.
  await page.check('#nr-filter-mismatch');
  eq(await visible(page, `${bsc} td.c`), B.fail, 'visible cells under the mismatch filter');
  eq(await visible(page, `${bsc} td.c.s1`), B.fail, 'all of them mismatches');
  const shownScenarios = await visible(page, 'details.sc');
  eq(shownScenarios, await page.locator('details.sc.has-fail').count(), 'only failed scenarios under the filter');
  await page.check('input[name="nr-filter"][value="all"]');
  eq(await visible(page, `${bsc} td.c`), B.cells, 'every cell again');

  // Three-tier: the changes of step 2, then the graph of step 3.
  const T = E.threeTier;
  const tsc = `#nr-sc-${T.si}`;
  await page.click(`${tsc} > summary`);
  eq(await page.locator(`${tsc} .scmeta .podnodes`).textContent(), T.podNodes, 'the node of each pod');
  await page.click(`${tsc} .steptab[data-k="${T.changedStep}"]`);
  await page.check('#nr-filter-changed');
  eq(await visible(page, `${tsc} td.c`), T.changed, 'cells changed since step 1');
  eq(await page.locator(`${tsc} .chlist li`).count(), T.changed, 'the list of changes');
  await page.check('input[name="nr-filter"][value="all"]');
  await page.click(`${tsc} .steptab[data-k="${T.step}"]`);
  await page.click(`${tsc} .view[data-view="graph"]`);
  const nodes = await page.locator(`${tsc} svg [data-node]`).evaluateAll((els) => els.map((e) => e.dataset.node));
  eq(nodes, T.nodes, 'graph nodes');
  const edges = await page.locator(`${tsc} svg path[data-from]`).evaluateAll((els) =>
    els.map((e) => [e.dataset.from, e.dataset.to, e.closest('[data-kind]').dataset.kind]).sort());
  eq(edges, T.edges, 'graph edges');
  check(await page.locator(`${tsc} svg`).isVisible(), 'the graph is shown');
  await page.locator(`${tsc} .graphwrap`).screenshot({ path: join(E.out, 'graph.png') });
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(`${tsc} .export`)]);
  eq(download.suggestedFilename(), 'three-tier-step3.svg', 'export file name');
  await download.saveAs(join(E.out, 'three-tier-step3.svg'));

  // The broken scenario's graph marks the mismatches.
  await page.click(`${bsc} .view[data-view="graph"]`);
  const kinds = await page.locator(`${bsc} svg [data-kind]`).evaluateAll((els) => els.map((e) => e.dataset.kind).sort());
  check(kinds.includes('missing') && kinds.includes('unexpected'), 'mismatch arrows both ways: ' + kinds);
  await page.screenshot({ path: join(E.out, 'report-graph.png'), fullPage: false });

  const foreign = requests.filter((u) => u !== url && !u.startsWith('data:') && !u.startsWith('blob:'));
  eq(foreign, [], 'requests other than the file itself');
  await page.close();

  // ---- netreach audit --html ------------------------------------------------------------------
  {
    const A = E.audit;
    const url = pathToFileURL(A.file).href;
    const p = await context.newPage();
    p.on('pageerror', (e) => failures.push('audit page error: ' + e.message));
    await p.goto(url, { waitUntil: 'load' });
    await p.waitForFunction(() => window.nrAudit && window.nrAudit.ready > 0);
    eq(await p.textContent('#na-context'), E.header.context, 'audit header: context');
    eq(await p.textContent('#na-cluster'), E.header.cluster, 'audit header: cluster version');
    eq(await p.textContent('#na-version'), E.header.version, 'audit header: netreach version');
    eq(await p.textContent('#na-summary'), A.summary, 'audit summary line');
    eq(await p.locator('#na-findings tbody tr').count(), A.findings, 'audit findings');
    eq(await p.locator('#na-grid td.c').count(), A.cells, 'audit matrix cells');
    await p.click(`#na-grid td.c[data-p="${A.sample.p}"]`);
    check(await p.locator('#na-detail').isVisible(), 'the audit detail panel opens');
    const detail = await p.textContent('#na-detail');
    check(detail.includes(A.sample.port) && detail.includes(A.sample.reason), 'the panel names the port and the reason: ' + detail);
    await p.screenshot({ path: join(E.out, 'audit.png'), fullPage: true });
    await p.keyboard.press('Escape');
    await p.check('#na-filter-allowed');
    eq(await visible(p, '#na-grid td.c'), A.allowedCells, 'allowed-only filter');
    await p.check('#na-filter-cross');
    eq(await visible(p, '#na-grid td.c'), A.crossCells, 'across-namespaces filter');
    await p.check('input[name="na-filter"][value="all"]');
    eq(await visible(p, '#na-grid td.c'), A.cells, 'every pair again');
    const an = await p.locator('#na-graph svg [data-node]').evaluateAll((els) => els.map((e) => e.dataset.node));
    eq(an, A.nodes, 'audit graph nodes');
    const ae = await p.locator('#na-graph svg path[data-from]').evaluateAll((els) => els.map((e) => [e.dataset.from, e.dataset.to]).sort());
    eq(ae, A.edges, 'audit graph edges');
    const foreignA = requests.filter((u) => u !== url && !u.startsWith('file:') && !u.startsWith('data:') && !u.startsWith('blob:'));
    eq(foreignA, [], 'requests from the audit page');
    await p.close();
  }

  // ---- 13 scenarios and 1,800 cells a step: timings -------------------------------------------
  const G = E.bigReport;
  const loads = [];
  for (let run = 0; run < 5; run++) {
    const o = await open(E.big);
    const ready = await o.page.evaluate(() => window.nrReport.ready);
    const nav = await o.page.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0];
      return { dcl: Math.round(n.domContentLoadedEventEnd), load: Math.round(n.loadEventEnd) };
    });
    loads.push({ ready: Math.round(ready), wall: o.wall, ...nav });
    if (run < 4) await o.page.close();
    else {
      const p = o.page;
      const gsc = `#nr-sc-${G.si}`;
      eq(await p.locator(`${gsc} td.c`).count(), G.cells[1], 'the 1,800-cell step is built on load');
      const st = [];
      for (const k of [0, 2, 1]) st.push(await timed(p, `${gsc} .steptab[data-k="${k}"]`));
      eq(await p.locator(`${gsc} td.c`).count(), G.cells[1], '1,800 cells after switching steps');
      const cell = await timed(p, `${gsc} td.c.k2`);
      check(await p.locator('#nr-detail').isVisible(), 'detail panel on the big step');
      await p.keyboard.press('Escape');
      const filter = await timed(p, '#nr-filter-mismatch');
      eq(await visible(p, `${gsc} td.c`), G.fail[1], 'mismatch filter on the big step');
      const unfilter = await timed(p, 'input[name="nr-filter"][value="all"]');
      const changed = await timed(p, '#nr-filter-changed');
      await timed(p, 'input[name="nr-filter"][value="all"]');
      const graphView = await timed(p, `${gsc} .view[data-view="graph"]`);
      check(await p.locator(`${gsc} svg path[data-from]`).count() > 800, 'the big graph has its arrows');
      await p.screenshot({ path: join(E.out, 'big-graph.png') });
      await timed(p, `${gsc} .view[data-view="matrix"]`);
      await p.locator(`${gsc} .grid`).first().scrollIntoViewIfNeeded();
      await p.screenshot({ path: join(E.out, 'big.png') });
      Object.assign(bench, { step_switch: st, cell_click: cell, filter_mismatch: filter, filter_all: unfilter, filter_changed: changed, graph_view: graphView });
      await p.close();
    }
  }
  loads.sort((a, b) => a.ready - b.ready);
  bench.loads = loads;
  bench.median_ready_ms = loads[2].ready;
  bench.median_load_ms = loads.map((l) => l.load).sort((a, b) => a - b)[2];
  const foreign2 = requests.filter((u) => !u.startsWith('file:') && !u.startsWith('data:') && !u.startsWith('blob:'));
  eq(foreign2, [], 'requests from the big report');
  eq(failures, [], 'page and console errors');
  console.log('BENCH ' + JSON.stringify(bench));
  console.log(`browser: ${checks} checks passed`);
} catch (e) {
  console.error(e.stack || String(e));
  if (failures.length) console.error(failures.join('\n'));
  exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(exitCode);
