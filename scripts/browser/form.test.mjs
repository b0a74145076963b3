// The access-request web form in a real browser (Debian's chromium, driven by
// playwright-core): a developer requests write access, two approvers approve it in their
// own sessions, and the developer then sees the grant. Saves a screenshot of the form.
// Usage: node form.test.mjs BASE_URL SCREENSHOT_DIR  (tokens in DEV1_TOKEN, LEAD1_TOKEN, LEAD2_TOKEN)
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';

const [base, shots] = process.argv.slice(2);
const results = { passed: 0, failed: 0 };

async function step(name, fn) {
  try {
    await fn();
    results.passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    results.failed++;
    console.log(`FAIL ${name}\n     ${err.message.split('\n').join('\n     ')}`);
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
// Each person signs in with their own token, in their own browser context.
const as = async (token) => (await browser.newContext({ extraHTTPHeaders: { Authorization: `Bearer ${token}` } })).newPage();

try {
  const dev1 = await as(process.env.DEV1_TOKEN);
  const reason = 'Correcting the balance of the client in ticket SUP-77 <script>alert(1)</script>';
  let requestId;

  await step('the form offers exactly the roles dev1 may request', async () => {
    await dev1.goto(`${base}/RequestAccess/`);
    const roles = await dev1.locator('#role option').allTextContents();
    assert.ok(roles.some((r) => r.includes('write_accounts')), `roles offered: ${roles}`);
    assert.ok(!roles.some((r) => r.includes('superuser')));
    await dev1.screenshot({ path: `${shots}/request-form.png`, fullPage: true });
  });

  await step('dev1 requests write_accounts and sees a confirmation, reason escaped', async () => {
    await dev1.selectOption('#role', 'write_accounts');
    await dev1.fill('#duration', '15m');
    await dev1.fill('#reason', reason);
    await dev1.fill('#ticket', 'SUP-77');
    await dev1.click('#request-form button[type=submit]');
    const text = await dev1.locator('#confirmation').textContent();
    requestId = /ar_[0-9a-f]+/.exec(text)?.[0];
    assert.ok(requestId, `confirmation: ${text}`);
    assert.equal(await dev1.locator('script:has-text("alert(1)")').count(), 0, 'the reason was rendered as markup');
  });

  for (const [who, token] of [['lead1', process.env.LEAD1_TOKEN], ['lead2', process.env.LEAD2_TOKEN]]) {
    await step(`${who} approves from the page`, async () => {
      const page = await as(token);
      await page.goto(`${base}/RequestAccess/`);
      const row = page.locator('#waiting tr', { hasText: requestId });
      await row.locator('input[name=comment]').fill(`ok for SUP-77 (${who})`);
      await row.locator('button[value=approve]').click();
      const result = await page.locator('#result').textContent();
      assert.match(result, /approv/i, `${who} saw: ${result}`);
    });
  }

  await step('dev1 sees the grant with time left', async () => {
    await dev1.goto(`${base}/RequestAccess/`);
    const grants = await dev1.locator('#grants').textContent();
    assert.match(grants, /write_accounts/);
    await dev1.screenshot({ path: `${shots}/grant.png`, fullPage: true });
  });
} finally {
  await browser.close();
}
console.log(`browser: ${results.passed} passed, ${results.failed} failed`);
process.exit(results.failed === 0 && results.passed > 0 ? 0 : 1);
