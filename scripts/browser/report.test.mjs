// The evidence report of the README walk-through's trail in a real browser (Debian's
// chromium, driven by playwright-core): the page for dev1's unmasked_users request shows
// the request, its approval and the queries run under the grant, each linked to its audit
// entry; the access review lists every person with a timeline. Nothing is fetched from
// anywhere: the pages are self-contained. Saves a screenshot of each page and checks it.
// Usage: node report.test.mjs REPORT_DIR SCREENSHOT_DIR
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';

const [dir, shots] = process.argv.slice(2);
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

// open loads a page, counting every request that is not the page itself.
async function open(name) {
  const page = await (await browser.newContext({ viewport: { width: 1300, height: 900 } })).newPage();
  const url = pathToFileURL(`${dir}/${name}`).href;
  const fetched = [];
  page.on('request', (r) => { if (r.url() !== url) fetched.push(r.url()); });
  await page.goto(url);
  return { page, fetched };
}

// checkShot takes a full-page screenshot and checks it shows something: a PNG of the
// page's size whose pixels are not all alike.
async function checkShot(page, path) {
  const png = await page.screenshot({ path, fullPage: true });
  assert.equal(png.subarray(1, 4).toString(), 'PNG', 'not a PNG');
  const width = png.readUInt32BE(16), height = png.readUInt32BE(20);
  assert.ok(width >= 1000 && height >= 600, `screenshot is ${width}x${height}`);
  assert.ok(png.length > 20000, `screenshot is only ${png.length} bytes: a blank page?`);
}

try {
  await step('the request page shows dev1\'s unmasked_users request, its approval and the queries under the grant', async () => {
    const { page, fetched } = await open('requests.html');
    const section = page.locator('section.request', { hasText: 'unmasked_users for dev1@example.com' }).first();
    await section.waitFor();
    const text = await section.textContent();
    assert.match(text, /SUP-1234/, 'the reason');
    const decision = section.locator('tr.decision', { hasText: 'lead1@example.com' });
    assert.match(await decision.textContent(), /approved/);
    const rows = section.locator('table.statements tr.statement');
    assert.ok(await rows.count() >= 2, `statements under the grant: ${await rows.count()}`);
    assert.match(await rows.first().textContent(), /dev1@example\.com/);
    assert.match(text, /users\.email/, 'the column the grant unmasked');
    // Each statement links to its audit entry, which is on the page.
    const href = await rows.first().locator('a', { hasText: 'attempt' }).getAttribute('href');
    assert.ok(href?.startsWith('#e-'), `link ${href}`);
    assert.equal(await page.locator(`[id="${href.slice(1)}"]`).count(), 1, `no entry ${href} on the page`);
    await section.scrollIntoViewIfNeeded();
    await checkShot(page, `${shots}/report-requests.png`);
    assert.deepEqual(fetched, [], 'the page fetched something');
  });

  await step('the access review lists every person with the access they held and a timeline', async () => {
    const { page, fetched } = await open('review.html');
    const people = await page.locator('table.people tr.person td:first-child').allTextContents();
    for (const who of ['dev1@example.com', 'dev2@example.com', 'lead1@example.com', 'lead2@example.com']) {
      assert.ok(people.includes(who), `${who} missing from ${people}`);
    }
    const dev1 = page.locator('table.people tr.person', { hasText: 'dev1@example.com' });
    assert.match(await dev1.textContent(), /unmasked_users/);
    assert.match(await dev1.textContent(), /write_accounts/);
    assert.ok(await page.locator('svg.timeline rect.grant').count() >= 2, 'grant bars in the timelines');
    const box = await page.locator('svg.timeline').first().boundingBox();
    assert.ok(box && box.width > 300, 'the timeline is drawn');
    await checkShot(page, `${shots}/report-review.png`);
    assert.deepEqual(fetched, [], 'the page fetched something');
  });
} finally {
  await browser.close();
}
console.log(`report: ${results.passed} passed, ${results.failed} failed`);
process.exit(results.failed === 0 && results.passed > 0 ? 0 : 1);
