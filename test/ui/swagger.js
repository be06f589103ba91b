// Drives Swagger UI at /docs in headless Chromium through every API
// operation — create, login, Authorize with the token, get, update, delete —
// and fails when an operation answers unexpectedly or the page fetches
// anything from another origin. Run by `make test-ui` (test/ui/run.sh).
const { chromium } = require('playwright-core');
const base = process.env.ORGSERVICE_URL || 'http://127.0.0.1:8090';
(async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox','--disable-gpu','--disable-quic','--no-first-run','--disable-background-networking','--disable-component-update','--disable-sync'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  const external = [];
  page.on('request', r => { if (!r.url().startsWith(base)) external.push(r.url()); });
  page.on('console', m => { if (m.type() === 'error') console.log('console error:', m.text()); });
  await page.goto(base + '/docs');
  await page.waitForSelector('.opblock');

  async function run(opId, want, body, params) {
    const block = page.locator(`#operations-${opId}`);
    await block.locator('.opblock-summary').first().click();
    await block.locator('button.try-out__btn').click();
    if (body !== undefined) {
      await block.locator('textarea.body-param__text').fill(body);
    }
    for (const [name, value] of Object.entries(params || {})) {
      await block.locator(`tr[data-param-name="${name}"] input`).fill(value);
    }
    await block.locator('button.execute').click();
    await block.locator('.live-responses-table .response-col_status').first().waitFor();
    const status = (await block.locator('.live-responses-table tbody .response-col_status').first().innerText()).trim();
    const text = await block.locator('.live-responses-table .response-col_description pre').first().innerText().catch(() => '');
    console.log(opId, status);
    if (status !== want) throw new Error(`${opId}: status ${status}, want ${want}: ${text}`);
    return { status, text };
  }
  const ops = await page.$$eval('.opblock', els => els.map(e => e.id));
  console.log('operations:', ops.join(' '));
  const tag = (id) => ops.find(o => o.endsWith('-' + id)).replace('operations-', '');
  await run(tag('createOrganization'), '201', JSON.stringify({organization_name: 'Browser Org', email: 'ui@example.com', password: 'password-1'}));
  const login = await run(tag('adminLogin'), '200', JSON.stringify({email: 'ui@example.com', password: 'password-1'}));
  const token = JSON.parse(login.text).access_token;
  await page.locator('button.authorize').first().click();
  await page.locator('.modal-ux input[type=text]').fill(token);
  await page.locator('.modal-ux button.authorize').click();
  await page.locator('.modal-ux button.close-modal').click();
  await run(tag('getOrganization'), '200', undefined, {organization_name: 'browser-org'});
  await run(tag('updateOrganization'), '200', JSON.stringify({organization_name: 'Browser Org Renamed'}));
  await run(tag('deleteOrganization'), '204', undefined, {organization_name: 'Browser Org Renamed'});
  await browser.close();
  if (external.length) throw new Error('requests to other origins: ' + external.join(' '));
  console.log('swagger ui: every operation ran from the page, no request left the server');
})().catch(e => { console.error(e); process.exit(1); });
