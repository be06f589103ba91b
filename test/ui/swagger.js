// Drives Swagger UI at /docs in headless Chromium through the organization,
// member, audit-log and document operations: create, login, Authorize with
// the token, get; add a member, list members, get one's own member, change
// the member's role, read the audit log, remove the member; create and list
// documents; change one's own password (which revokes the token), log in
// again and Authorize anew, page through the audit log; then, Authorized
// with the operator key, find the organization, cap it, suspend and
// reactivate it through the operator API; rename and delete.
// Every operation is run from its block on the page (Try it out, fill,
// Execute); it fails when an operation answers unexpectedly, when the page
// shows another status or body than the request got, when a request carries
// the wrong Authorization, or when the page fetches anything from another
// origin. Run by `make test-ui` (test/ui/run.sh).
const { chromium } = require('playwright-core');
const assert = require('node:assert/strict');
const base = process.env.ORGSERVICE_URL || 'http://127.0.0.1:8090';
(async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox','--disable-gpu','--disable-quic','--no-first-run','--disable-background-networking','--disable-component-update','--disable-sync'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  const external = [];
  page.on('request', r => { if (!r.url().startsWith(base)) external.push(r.url()); });
  let want = null; // the status the running operation expects: Chromium logs an error status, no news then
  page.on('console', m => {
    if (m.type() === 'error' && !(want && m.text().includes(`status of ${want} `))) console.log('console error:', m.text());
  });
  await page.goto(base + '/docs');
  await page.waitForSelector('.opblock');

  const ops = await page.$$eval('.opblock', els => els.map(e => e.id));
  console.log('operations:', ops.join(' '));
  // Blocks are found by operationId (api/openapi.yaml); their ids are
  // operations-<tag>-<operationId>.
  const block = (opId) => {
    const id = ops.find(o => o.endsWith('-' + opId));
    if (!id) throw new Error(`no block for operation ${opId}`);
    return page.locator('#' + id);
  };

  let token = null; // the token bearerAuth was given last
  let operatorToken = null; // the key operatorKey was given last
  const ran = [];
  // run opens the operation's block, enables Try it out, fills the body and
  // the parameters (path parameters too), executes, and checks the status the
  // page shows against the expected one and against the response the request
  // got. It leaves the block as it found it (response cleared, Try it out
  // cancelled, collapsed), so an operation can run again later.
  async function run(opId, expected, { body, params } = {}) {
    want = expected;
    const b = block(opId);
    await b.locator('.opblock-summary').first().click();
    await b.locator('button.try-out__btn:not(.cancel):not(.reset)').click(); // Try it out
    if (body !== undefined) await b.locator('textarea.body-param__text').fill(body);
    for (const [name, value] of Object.entries(params || {})) {
      // An object parameter (the deepObject filter) is a JSON textarea.
      await b.locator(`tr[data-param-name="${name}"]`).locator('input, textarea').first().fill(value);
    }
    const method = (await b.locator('.opblock-summary-method').first().innerText()).trim();
    const [resp] = await Promise.all([
      page.waitForResponse(r => r.url().startsWith(base + '/api/')),
      b.locator('button.execute').click(),
    ]);
    await b.locator('.live-responses-table tbody .response-col_status').first().waitFor();
    const status = (await b.locator('.live-responses-table tbody .response-col_status').first().innerText()).trim();
    const shown = b.locator('.live-responses-table .response-col_description div:has(> h5:text-is("Response body")) pre');
    const text = (await shown.count()) ? await shown.first().innerText() : '';
    const url = new URL(resp.url());
    const line = `${opId}: ${resp.request().method()} ${url.pathname}${url.search} -> ${status}`;
    console.log(line);
    ran.push(line);
    if (status !== expected) throw new Error(`${opId}: status ${status}, want ${expected}: ${text}`);
    assert.equal(resp.request().method(), method, `${opId}: the page sent another method`);
    assert.equal(String(resp.status()), status, `${opId}: the page shows another status than the response's`);
    // An operation with a security requirement (a lock on its block) is
    // sent with what its scheme was given last — the operator API's the
    // operator key, the others the member's token; the rest without one.
    const auth = (await resp.request().allHeaders())['authorization'];
    const secured = (await b.locator('.authorization__btn').count()) > 0;
    const sent = opId.startsWith('operator') ? operatorToken : token;
    assert.equal(auth, secured ? 'Bearer ' + sent : undefined, `${opId}: sent with the wrong Authorization`);
    const got = await resp.text();
    const json = text ? JSON.parse(text) : null;
    assert.deepEqual(json, got ? JSON.parse(got) : null, `${opId}: the page shows another body than the response's`);
    await b.locator('button.btn-clear').click();
    await b.locator('button.try-out__btn.cancel').click();
    await b.locator('.opblock-summary').first().click(); // collapse
    want = null;
    return { status, json, headers: resp.headers() };
  }
  // authorize gives scheme (bearerAuth or operatorKey) t in the Authorize
  // dialog, logging that scheme out first when it holds one already.
  async function authorize(t, scheme = 'bearerAuth') {
    await page.locator('button.authorize').first().click();
    const modal = page.locator('.modal-ux');
    await modal.locator('button.auth').first().waitFor(); // Authorize or Logout
    const box = modal.locator('.auth-container').filter({ has: page.locator('h4', { hasText: scheme }) });
    const logout = box.locator('button', { hasText: 'Logout' });
    if (await logout.count()) await logout.click();
    await box.locator('input[type=text]').fill(t);
    await box.locator('button.authorize').click();
    await modal.locator('button.close-modal').click();
    if (scheme === 'operatorKey') operatorToken = t; else token = t;
  }
  const actions = (page) => page.items.map(e => e.action);

  const owner = 'ui@example.com', added = 'ui-admin@example.com';
  await run('createOrganization', '201', { body: JSON.stringify({organization_name: 'Browser Org', email: owner, password: 'password-1'}) });
  let login = await run('adminLogin', '200', { body: JSON.stringify({email: owner, password: 'password-1'}) });
  await authorize(login.json.access_token);
  await run('getOrganization', '200', { params: {organization_name: 'browser-org'} });

  // Members.
  const member = (await run('addMember', '201', { body: JSON.stringify({email: added, password: 'password-a', role: 'admin'}) })).json;
  assert.deepEqual([member.email, member.role], [added, 'admin']);
  const list = (await run('listMembers', '200')).json;
  assert.deepEqual(list.items.map(m => [m.email, m.role]), [[owner, 'owner'], [added, 'admin']]);
  const me = (await run('getMe', '200')).json;
  assert.deepEqual([me.email, me.role], [owner, 'owner']);
  const role = await run('setMemberRole', '200', { body: JSON.stringify({role: 'member'}), params: {id: member.id} });
  assert.deepEqual([role.json.id, role.json.role], [member.id, 'member']);

  // The audit log, newest first, with the request id of the role change.
  let audit = (await run('readAudit', '200', { params: {limit: '10'} })).json;
  assert.deepEqual(actions(audit), ['member.role_changed', 'member.added', 'login.succeeded', 'org.created']);
  assert.equal(audit.next, null);
  const [changed, add] = audit.items;
  assert.deepEqual(changed.target, {type: 'member', id: member.id, name: added});
  assert.deepEqual(changed.details, {from: 'admin', to: 'member'});
  assert.equal(changed.actor.email, owner);
  assert.equal(changed.request_id, role.headers['x-request-id']);
  assert.deepEqual(add.details, {role: 'admin'});

  await run('removeMember', '204', { params: {id: member.id} });
  assert.deepEqual((await run('listMembers', '200')).json.items.map(m => m.email), [owner]);

  // Documents.
  const doc = (await run('createDocument', '201', { body: JSON.stringify({id: 'ui-doc-1', customer: 'Initech', paid: false}) })).json;
  assert.deepEqual([doc.id, doc.version, doc.data], ['ui-doc-1', 1, {customer: 'Initech', paid: false}]);
  await run('createDocument', '201', { body: JSON.stringify({id: 'ui-doc-2', customer: 'Initrode', paid: true}) });
  // Swagger UI fills the filter with the spec's example; set it, then empty it.
  let docs = (await run('listDocuments', '200', { params: {limit: '10', filter: JSON.stringify({customer: 'Initrode'})} })).json;
  assert.deepEqual(docs.items.map(d => d.id), ['ui-doc-2']);
  docs = (await run('listDocuments', '200', { params: {limit: '1', filter: ''} })).json;
  assert.deepEqual(docs.items.map(d => d.id), ['ui-doc-1']);
  assert.notEqual(docs.next, null);

  // Changing one's password revokes the token: log in again, Authorize anew.
  await run('updateMe', '200', { body: JSON.stringify({password: 'password-2', current_password: 'password-1'}) });
  await run('getMe', '401');
  await run('adminLogin', '401', { body: JSON.stringify({email: owner, password: 'password-1'}) });
  login = await run('adminLogin', '200', { body: JSON.stringify({email: owner, password: 'password-2'}) });
  await authorize(login.json.access_token);
  assert.equal((await run('getMe', '200')).json.email, owner);

  // The audit log in two pages, the second from the first's next.
  audit = (await run('readAudit', '200', { params: {limit: '4'} })).json;
  assert.deepEqual(actions(audit), ['login.succeeded', 'login.failed', 'credentials.changed', 'member.removed']);
  assert.deepEqual([audit.items[1].target.name, typeof audit.items[1].details.reason], [owner, 'string']);
  assert.equal(audit.items[2].details.password_changed, 'true');
  assert.match(audit.next, /^[0-9]{19}-[0-9a-f]{8}$/);
  audit = (await run('readAudit', '200', { params: {limit: '10', after: audit.next} })).json;
  assert.deepEqual(actions(audit), ['member.role_changed', 'member.added', 'login.succeeded', 'org.created']);
  assert.equal(audit.next, null);

  // The operator API, under its own scheme: find the organization, cap
  // it, suspend it and reactivate it; the member's token sees each.
  await authorize(process.env.OPERATOR_API_KEY, 'operatorKey');
  const found = (await run('operatorListOrganizations', '200', { params: {q: 'BROWSER', limit: '10'} })).json;
  assert.deepEqual(found.items.map(o => [o.organization_name, o.status, o.usage.documents]), [['Browser Org', 'active', 2]]);
  const id = found.items[0].id;
  let op = (await run('operatorPatchOrganization', '200', { params: {id}, body: JSON.stringify({quotas: {documents: 2}}) })).json;
  assert.equal(op.quotas.documents, 2);
  const over = (await run('createDocument', '403', { body: JSON.stringify({id: 'ui-doc-3'}) })).json;
  assert.deepEqual([over.type, over.quota, over.limit, over.used], ['https://orgservice.dev/problems/quota-exceeded', 'documents', 2, 2]);
  assert.deepEqual((await run('readUsage', '200')).json.documents, {used: 2, limit: 2});
  await run('operatorPatchOrganization', '200', { params: {id}, body: JSON.stringify({status: 'suspended'}) });
  assert.equal((await run('getMe', '403')).json.type, 'https://orgservice.dev/problems/organization-suspended');
  op = (await run('operatorPatchOrganization', '200', { params: {id}, body: JSON.stringify({status: 'active', quotas: {documents: null}}) })).json;
  assert.deepEqual([op.status, op.quotas.documents], ['active', 1000000]);
  assert.equal((await run('getMe', '200')).json.email, owner);
  audit = (await run('readAudit', '200', { params: {limit: '3', after: ''} })).json;
  assert.deepEqual(actions(audit), ['org.quotas_changed', 'org.reactivated', 'org.suspended']);
  assert.equal(audit.items[0].actor.type, 'operator');
  assert.equal((await run('operatorGetOrganization', '200', { params: {id} })).json.status, 'active');

  await run('updateOrganization', '200', { body: JSON.stringify({organization_name: 'Browser Org Renamed'}) });
  await run('deleteOrganization', '204', { params: {organization_name: 'Browser Org Renamed'} });
  await browser.close();
  if (external.length) throw new Error('requests to other origins: ' + external.join(' '));
  console.log(`swagger ui: ${ran.length} operations ran from the page, no request left the server`);
})().catch(e => { console.error(e); process.exit(1); });
