// End-to-end tests of the Watchfire web UI in headless Chromium (playwright-core only).
//
//   WATCHFIRE_URL   the UI's base, ending in "/" (e.g. http://127.0.0.1:9090/ or .../prom/)
//   SCREENSHOT_DIR  where to save one PNG per page (default ./screenshots)
//   CHROMIUM        the browser binary (default /usr/bin/chromium)
//   ALERT_NAME      an alert the server has firing (default Watchdog), used by the silence test
//
// Prints one PASS/FAIL line per check; exits 1 if any check failed.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const BASE = process.env.WATCHFIRE_URL ?? 'http://127.0.0.1:9090/';
const SHOTS = process.env.SCREENSHOT_DIR ?? 'screenshots';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ALERT_NAME = process.env.ALERT_NAME ?? 'Watchdog';
// The metric-name prefix typed into the editor; Watchfire's self-metrics always have it.
const METRIC_PREFIX = process.env.METRIC_PREFIX ?? 'prometheus_http_req';

if (!BASE.endsWith('/')) {
  console.error(`WATCHFIRE_URL must end with "/": ${BASE}`);
  process.exit(2);
}
const baseURL = new URL(BASE);
mkdirSync(SHOTS, { recursive: true });

// Every page path the server serves, with the heading it must show and a selector for its
// main content (present once its data has loaded).
const pages = [
  ['', 'Query', '.promql-editor .cm-content'], // the base redirects to query
  ['query', 'Query', '.promql-editor .cm-content'],
  ['graph', 'Query', '.promql-editor .cm-content'],
  ['alerts', 'Alerts', '.alert-rule'],
  ['rules', 'Rules', '.rule-group-card'],
  ['targets', 'Targets', '.target-pool'],
  ['service-discovery', 'Service discovery', '.data-table.sd'],
  ['status', 'Runtime & build information', '.kv-table'],
  ['tsdb-status', 'TSDB status', '.top-table'],
  ['flags', 'Command-line flags', '.data-table.flags'],
  ['config', 'Configuration', 'pre.yaml'],
  ['alertmanager', 'Alert groups', '.alert-group'],
  ['silences', 'Silences', '.tabs'],
  ['silences/new', 'New silence', '.silence-form'],
  ['notifications', 'Notifications', '.data-table.notifications, .empty'],
];

let failures = 0;
const log = (ok, name, detail = '') => {
  if (!ok) failures++;
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
};

// Console errors, page errors and requests to other hosts, collected per check.
let problems = [];
const foreign = [];
function watch(page) {
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol) && u.host !== baseURL.host) foreign.push(r.url());
  });
}

async function check(name, fn) {
  problems = [];
  const began = Date.now();
  const took = () => ` (${((Date.now() - began) / 1000).toFixed(1)}s)`;
  try {
    const detail = await fn();
    if (problems.length) throw new Error(problems.join('; '));
    log(true, name + took(), detail ?? '');
  } catch (e) {
    log(false, name + took(), (e?.message ?? String(e)).split('\n')[0] + (problems.length ? ` [${problems.join('; ')}]` : ''));
  }
}

const shot = (page, name, fullPage = true) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
const slug = (p) => (p === '' ? 'base' : p.replace(/\//g, '-'));

/** Waits for the page's heading and content, and for its loading spinners to go. */
async function pageReady(page, heading, content) {
  await page.locator('main h1', { hasText: heading }).first().waitFor({ timeout: 15000 });
  await page.locator(`main :is(${content})`).first().waitFor({ timeout: 15000 });
  await page.waitForFunction(() => !document.querySelector('main .loading'), null, { timeout: 15000 });
  const errs = await page.locator('main .alert-box.error').allInnerTexts();
  if (errs.length) throw new Error(`error shown on the page: ${errs.join(' | ')}`);
}

/** Polls fn until it returns a truthy value or the deadline passes. */
async function poll(what, fn, ms = 15000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}

async function api(path) {
  const r = await fetch(new URL(path, BASE));
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  const page = await ctx.newPage();
  watch(page);

  // a. Every page loads, shows its heading and content, without console or page errors.
  for (const [path, heading, content] of pages) {
    await check(`page /${path} loads`, async () => {
      await page.goto(BASE + path, { waitUntil: 'load' });
      await pageReady(page, heading, content);
      if (path === '' || path === 'graph') {
        const p = new URL(page.url()).pathname;
        if (!p.endsWith('/query')) throw new Error(`expected a redirect to query, at ${p}`);
      }
      await shot(page, slug(path));
    });
  }

  await check('navigation menu links to every page', async () => {
    await page.goto(BASE + 'alerts');
    await pageReady(page, 'Alerts', '.alert-rule');
    const hrefs = await page.locator('header nav a').evaluateAll((as) => as.map((a) => new URL(a.href).pathname));
    const base = baseURL.pathname;
    const want = ['query', 'alerts', 'alertmanager', 'silences', 'notifications', 'targets', 'service-discovery', 'rules', 'status', 'tsdb-status', 'flags', 'config'];
    const missing = want.filter((w) => !hrefs.includes(base + w));
    if (missing.length) throw new Error(`missing links: ${missing.join(', ')}`);
    // Client-side navigation through a dropdown.
    await page.getByRole('button', { name: /Status/ }).click();
    await page.getByRole('menuitem', { name: 'Targets' }).click();
    await pageReady(page, 'Targets', '.target-pool');
    return `${want.length} links`;
  });

  // b. Autocomplete a metric name, run it as a table, then as a graph.
  let expr = '';
  await check('query: autocompletion offers a metric, table shows rows', async () => {
    await page.goto(BASE + 'query');
    await pageReady(page, 'Query', '.promql-editor .cm-content');
    await page.locator('.cm-content').first().click();
    await page.keyboard.type(METRIC_PREFIX, { delay: 40 });
    const options = page.locator('.cm-tooltip-autocomplete li');
    await options.first().waitFor({ timeout: 10000 });
    // Completion results arrive asynchronously as the typed prefix grows; wait until the
    // list has settled before choosing from it.
    let labels = [];
    await poll('a settled completion list', async () => {
      const before = await page.locator('.cm-tooltip-autocomplete li .cm-completionLabel').allInnerTexts();
      await new Promise((r) => setTimeout(r, 400));
      labels = await page.locator('.cm-tooltip-autocomplete li .cm-completionLabel').allInnerTexts();
      return labels.length > 0 && labels.join('\n') === before.join('\n');
    }, 10000);
    const idx = labels.findIndex((l) => l.startsWith(METRIC_PREFIX));
    if (idx < 0) throw new Error(`no option starts with ${METRIC_PREFIX}: ${labels.slice(0, 10).join(', ')}`);
    for (let i = 0; i < idx; i++) await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter'); // accepts the completion (does not execute)
    expr = (await page.locator('.cm-content').first().innerText()).trim();
    if (expr !== labels[idx]) throw new Error(`editor holds "${expr}" after accepting "${labels[idx]}"`);
    await page.getByRole('button', { name: 'Execute', exact: true }).first().click();
    const rows = page.locator('.panel-result .data-table tbody tr');
    await rows.first().waitFor({ timeout: 15000 });
    await shot(page, 'query-table');
    return `${expr}: ${await rows.count()} rows`;
  });

  await check('query: graph draws series with a legend', async () => {
    await page.keyboard.press('Escape'); // close any completion popup left open
    await page.getByRole('tab', { name: 'Graph' }).first().click({ timeout: 10000 });
    await page.locator('.graph .uplot canvas').first().waitFor({ timeout: 15000 });
    const legend = await page.locator('.legend .legend-item').count();
    if (legend < 1) throw new Error('no series in the legend');
    const points = Number(await page.locator('.graph').first().getAttribute('data-points'));
    if (!(points > 0)) throw new Error('the graph has no data points');
    // Hover the plot's newest samples (a fresh server has only minutes of data at the right
    // edge): the tooltip shows their values.
    const box = await page.locator('.graph .u-over').first().boundingBox();
    await page.mouse.move(box.x + box.width - 4, box.y + box.height / 2);
    await page.locator('.graph-tip:not([hidden]) .tip-row').first().waitFor({ timeout: 5000 });
    // Toggle a series off and on through the legend.
    const item = page.locator('.legend .legend-item').first();
    await item.click();
    if (!(await item.getAttribute('class')).includes('off')) throw new Error('legend click did not hide the series');
    await item.click();
    await page.locator('main h1').hover();
    await shot(page, 'query-graph');
    return `${legend} series, ${points} points`;
  });

  // c. The URL carries the state: a reload restores it.
  await check('query: reload restores expression and tab from the URL', async () => {
    const url = new URL(page.url());
    if (url.searchParams.get('g0.expr') !== expr) throw new Error(`g0.expr in URL is "${url.searchParams.get('g0.expr')}"`);
    await page.reload();
    await pageReady(page, 'Query', '.graph .uplot canvas');
    const got = (await page.locator('.cm-content').first().innerText()).trim();
    if (got !== expr) throw new Error(`editor holds "${got}", expected "${expr}"`);
    const selected = await page.locator('.panel-tabs [aria-selected="true"]').first().innerText();
    if (selected !== 'Graph') throw new Error(`tab after reload is ${selected}`);
  });

  await check('query: Prometheus-style graph link works', async () => {
    await page.goto(BASE + 'graph?g0.expr=' + encodeURIComponent('up') + '&g0.tab=1&g0.range_input=30m');
    await pageReady(page, 'Query', '.panel-result .data-table tbody tr');
    const got = (await page.locator('.cm-content').first().innerText()).trim();
    if (got !== 'up') throw new Error(`editor holds "${got}"`);
    if (!new URL(page.url()).pathname.endsWith('/query')) throw new Error(`not redirected to query: ${page.url()}`);
  });

  await check('query: Ctrl+Enter executes', async () => {
    await page.goto(BASE + 'query');
    await pageReady(page, 'Query', '.promql-editor .cm-content');
    await page.locator('.cm-content').first().click();
    await page.keyboard.type('count(up)');
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+Enter');
    await page.locator('.panel-result .data-table tbody tr').first().waitFor({ timeout: 15000 });
    if (new URL(page.url()).searchParams.get('g0.expr') !== 'count(up)') throw new Error('expression not in the URL');
  });

  await check('query: add and remove panels', async () => {
    await page.getByRole('button', { name: 'Add panel', exact: true }).click();
    if ((await page.locator('.panel').count()) !== 2) throw new Error('no second panel');
    await page.locator('.remove-panel').last().click();
    if ((await page.locator('.panel').count()) !== 1) throw new Error('panel not removed');
  });

  // Theme: the toggle switches to dark and is remembered across a reload.
  await check('dark theme toggle is applied and remembered', async () => {
    await page.goto(BASE + 'alerts');
    await pageReady(page, 'Alerts', '.alert-rule');
    if ((await page.evaluate(() => document.documentElement.dataset.theme)) !== 'light') await page.locator('.theme-toggle').click();
    await page.locator('.theme-toggle').click();
    if ((await page.evaluate(() => document.documentElement.dataset.theme)) !== 'dark') throw new Error('not dark after toggle');
    await page.reload();
    await pageReady(page, 'Alerts', '.alert-rule');
    if ((await page.evaluate(() => document.documentElement.dataset.theme)) !== 'dark') throw new Error('dark not remembered');
    await shot(page, 'alerts-dark');
    await page.goto(BASE + 'query?g0.expr=' + encodeURIComponent('rate(prometheus_http_requests_total[1m])') + '&g0.tab=0');
    await pageReady(page, 'Query', '.graph .uplot canvas');
    await shot(page, 'query-graph-dark');
    await page.locator('.theme-toggle').click();
  });

  // Phone width: the menu folds behind a button.
  await check('phone width: menu button, query and alerts render', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: 'light', isMobile: true, hasTouch: true });
    const p = await phone.newPage();
    watch(p);
    await p.goto(BASE + 'query');
    await pageReady(p, 'Query', '.promql-editor .cm-content');
    await shot(p, 'query-phone', false);
    const menu = p.locator('.menu-button');
    if (!(await menu.isVisible())) throw new Error('menu button not visible');
    if (await p.locator('.nav-links').isVisible()) throw new Error('nav links visible before opening the menu');
    await menu.click();
    await p.getByRole('menuitem', { name: 'Silences' }).waitFor({ timeout: 5000 });
    await shot(p, 'menu-phone', false);
    await p.getByRole('link', { name: 'Alerts', exact: true }).click();
    await pageReady(p, 'Alerts', '.alert-rule');
    await shot(p, 'alerts-phone', false);
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 2) throw new Error(`page is ${overflow}px wider than the screen`);
    await phone.close();
  });

  // "Silence" on an alert opens the form prefilled with its labels.
  await check('alert groups: Silence button prefills the form', async () => {
    await page.goto(BASE + 'alertmanager?filter=' + encodeURIComponent(`alertname="${ALERT_NAME}"`));
    await pageReady(page, 'Alert groups', '.alert-group');
    await page.locator('.am-alert-actions a', { hasText: 'Silence' }).first().click();
    await pageReady(page, 'New silence', '.silence-form');
    const names = await page.locator('.matcher-row input[aria-label$="label name"]').evaluateAll((is) => is.map((i) => i.value));
    const values = await page.locator('.matcher-row input[aria-label$="value"]').evaluateAll((is) => is.map((i) => i.value));
    const i = names.indexOf('alertname');
    if (i < 0 || values[i] !== ALERT_NAME) throw new Error(`matchers not prefilled: ${names.join(',')}`);
  });

  // d. Create a silence in the UI, check the API sees it and the alert is suppressed; expire it.
  let silenceId = '';
  await check(`silence: create for alertname=${ALERT_NAME} with preview`, async () => {
    await page.goto(BASE + 'silences/new');
    await pageReady(page, 'New silence', '.silence-form');
    await page.getByLabel('Matcher 1 label name').fill('alertname');
    await page.getByLabel('Matcher 1 operator').selectOption('=');
    await page.getByLabel('Matcher 1 value').fill(ALERT_NAME);
    await page.getByLabel('Duration').fill('1h');
    await page.getByLabel('Created by').fill('e2e');
    await page.getByLabel('Comment').fill('Created by the web UI end-to-end test');
    await page.locator('.preview-list .am-alert', { hasText: `alertname="${ALERT_NAME}"` }).first().waitFor({ timeout: 10000 });
    await shot(page, 'silence-new-filled');
    await page.getByRole('button', { name: 'Create silence' }).click();
    await page.waitForURL(/\/silences\/[0-9a-f-]{32,36}$/, { timeout: 10000 });
    silenceId = new URL(page.url()).pathname.split('/').pop();
    await pageReady(page, 'Silence', '.silence-summary');
    await page.locator('.alert-box.success').waitFor();
    await shot(page, 'silence-view');
    const silences = await api('api/v2/silences');
    const s = silences.find((x) => x.id === silenceId);
    if (!s) throw new Error(`silence ${silenceId} not in api/v2/silences`);
    if (s.status.state !== 'active') throw new Error(`silence state is ${s.status.state}`);
    const ok = s.matchers.length === 1 && s.matchers[0].name === 'alertname' && s.matchers[0].value === ALERT_NAME && !s.matchers[0].isRegex && s.matchers[0].isEqual !== false;
    if (!ok) throw new Error(`unexpected matchers ${JSON.stringify(s.matchers)}`);
    return silenceId;
  });

  await check('silence: the alert is suppressed', async () => {
    if (!silenceId) throw new Error('no silence was created');
    await poll('state suppressed', async () => {
      const alerts = await api(`api/v2/alerts?filter=${encodeURIComponent(`alertname="${ALERT_NAME}"`)}`);
      return alerts.length > 0 && alerts.every((a) => a.status.state === 'suppressed' && a.status.silencedBy.includes(silenceId));
    });
  });

  await check('silence: the list shows it; page silences/<id> loads', async () => {
    await page.goto(BASE + 'silences');
    await pageReady(page, 'Silences', `.silence[data-silence-id="${silenceId}"]`);
    await shot(page, 'silences-active');
    await page.goto(BASE + `silences/${silenceId}`);
    await pageReady(page, 'Silence', '.silence-summary');
  });

  await check('silence: edit in the UI (comment and duration)', async () => {
    if (!silenceId) throw new Error('no silence was created');
    await page.goto(BASE + `silences/${silenceId}`);
    await pageReady(page, 'Silence', '.silence-form');
    await page.getByLabel('Comment').fill('Edited by the web UI end-to-end test');
    await page.getByLabel('Duration').fill('2h');
    await page.getByRole('button', { name: 'Update silence' }).click();
    await page.locator('.alert-box.success', { hasText: 'updated' }).waitFor({ timeout: 10000 });
    // Alertmanager keeps the id when only the comment and end change; follow it if not.
    silenceId = new URL(page.url()).pathname.split('/').pop();
    const s = await poll('the edited silence', async () => {
      const all = await api('api/v2/silences');
      return all.find((x) => x.id === silenceId && x.status.state === 'active' && x.comment === 'Edited by the web UI end-to-end test');
    }, 10000);
    const len = (Date.parse(s.endsAt) - Date.parse(s.startsAt)) / 3600e3;
    if (Math.abs(len - 2) > 0.01) throw new Error(`silence lasts ${len.toFixed(3)}h, expected 2h`);
    return silenceId;
  });

  await check('silence: expire in the UI restores the alert', async () => {
    if (!silenceId) throw new Error('no silence was created');
    await page.goto(BASE + 'silences');
    await pageReady(page, 'Silences', `.silence[data-silence-id="${silenceId}"]`);
    await page.locator(`.silence[data-silence-id="${silenceId}"] button.expire`).click();
    await page.locator(`.silence[data-silence-id="${silenceId}"]`).waitFor({ state: 'detached', timeout: 10000 });
    await poll('silence expired', async () => {
      const s = await api(`api/v2/silence/${silenceId}`);
      return s.status.state === 'expired';
    });
    await poll('state active', async () => {
      const alerts = await api(`api/v2/alerts?filter=${encodeURIComponent(`alertname="${ALERT_NAME}"`)}`);
      return alerts.length > 0 && alerts.every((a) => a.status.state === 'active');
    });
    await page.getByRole('tab', { name: /Expired/ }).click();
    await page.locator(`.silence[data-silence-id="${silenceId}"]`).waitFor({ timeout: 5000 });
    await shot(page, 'silences-expired');
  });

  await check('no request went to another host', async () => {
    if (foreign.length) throw new Error(`${foreign.length} foreign requests: ${[...new Set(foreign)].slice(0, 5).join(', ')}`);
  });
} finally {
  await browser.close();
}

console.log(failures === 0 ? 'ALL PASSED' : `${failures} FAILED`);
process.exit(failures === 0 ? 0 : 1);
