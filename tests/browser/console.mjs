// Buys a pack through the dev console in Debian's Chromium: pick a demo buyer and a product on
// /dev, pay on the Stripe stand-in's page, come back, and wait (bounded) until /dev shows the
// order paid; then open the welcome email in the sandbox outbox, connect Discord through its
// link (our OAuth routes, the Discord stand-in) and wait for the access onboarding grants; book
// a session of the pack; and start a second checkout left unpaid (its seat held). Exits non-zero, saying which step failed, when any step does.
//
//   CONSOLE_URL=http://127.0.0.1:PORT [SCREENSHOT=docs/dev-console.png] node console.mjs
//
// tests/integration/browser.rs runs it against the app it serves, playing Inngest meanwhile.
import { chromium } from 'playwright-core';

const base = process.env.CONSOLE_URL;
if (!base) throw new Error('CONSOLE_URL is not set');
const PRODUCT = 'Portrait fundamentals';
const PAID_WITHIN_MS = 30_000;

let step = 'launching Chromium';
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(15_000);

  step = 'opening /dev';
  await page.goto(`${base}/dev`);
  await page.getByRole('heading', { name: 'Huckleberry dev console' }).waitFor();

  step = 'choosing a demo buyer and a product';
  const buyer = page.locator('#buy select[name=buyer]');
  // Options read "Name (email)"; the orders list names buyers by email.
  const buyerLabel = await buyer.locator('option').first().textContent();
  const buyerEmail = /\(([^)]+)\)/.exec(buyerLabel)?.[1];
  if (!buyerEmail) throw new Error(`no email in the buyer option "${buyerLabel}"`);
  // Until Clerk's profile reaches our users table the console names a demo buyer by name.
  const buyerName = buyerLabel.split(' (')[0];
  const buyerNamed = new RegExp(`${buyerEmail}|${buyerName}`);
  await buyer.selectOption({ index: 0 });
  const product = page.locator('#buy select[name=product_id] option', { hasText: PRODUCT });
  await page.locator('#buy select[name=product_id]').selectOption(await product.getAttribute('value'));

  step = 'buying: the console starts a checkout and sends the browser to the Stripe stand-in';
  await Promise.all([
    page.waitForURL(/\/sandbox\/stripe\/checkout\//),
    page.getByRole('button', { name: 'Buy with Stripe' }).click(),
  ]);

  step = 'paying on the Stripe stand-in';
  await Promise.all([
    page.waitForURL(/\/checkout\/success/),
    page.getByRole('button', { name: /Pay/ }).click(),
  ]);
  await page.getByText('Thank you, your payment went through').waitFor();

  step = `waiting up to ${PAID_WITHIN_MS / 1000} s for /dev to show the order of ${buyerEmail} paid`;
  const deadline = Date.now() + PAID_WITHIN_MS;
  for (;;) {
    await page.goto(`${base}/dev`);
    const row = page.locator('#orders tr', { hasText: buyerNamed }).filter({ hasText: PRODUCT });
    if ((await row.count()) > 0 && (await row.first().locator('td.status-paid').count()) > 0) break;
    if (Date.now() > deadline) {
      const orders = await page.locator('#orders').innerText();
      throw new Error(`the order is not paid on /dev; the orders section reads:\n${orders}`);
    }
    await page.waitForTimeout(500);
  }
  step = 'opening the welcome email in the sandbox outbox';
  await page.getByRole('link', { name: /email outbox/ }).click();
  const welcome = page.locator('tr', { hasText: buyerEmail }).filter({ hasText: 'welcome' });
  for (const until = Date.now() + PAID_WITHIN_MS; (await welcome.count()) === 0; ) {
    if (Date.now() > until) throw new Error('no welcome email in the outbox');
    await page.waitForTimeout(500);
    await page.reload();
  }
  await welcome.first().getByRole('link').click();

  step = 'connecting Discord from the email, through our OAuth routes and the Discord stand-in';
  await page.getByRole('link', { name: 'Connect Discord' }).click();
  await Promise.all([
    page.waitForURL(/\/auth\/discord\/success/),
    page.getByRole('button', { name: 'Authorize' }).click(),
  ]);

  step = 'waiting for /dev to show the dashboard access onboarding granted';
  for (const until = Date.now() + PAID_WITHIN_MS; ; ) {
    await page.goto(`${base}/dev`);
    if ((await page.locator('#access td.status-granted').count()) > 0) break;
    if (Date.now() > until) {
      throw new Error(`no access granted; /dev reads:\n${await page.locator('#access').innerText()}`);
    }
    await page.waitForTimeout(500);
  }

  step = 'booking a session of the new pack as the buyer';
  const inTwoDays = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 14) + '00';
  await page.locator('#book select[name=pack]').selectOption({ index: 0 });
  await page.locator('#book input[name=scheduled_at]').fill(inTwoDays);
  await page.getByRole('button', { name: 'Book as the buyer' }).click();
  await page.locator('#notice', { hasText: 'booked a session' }).waitFor();
  await page.locator('#sessions td.status-scheduled').first().waitFor();

  step = 'starting a second checkout and leaving it unpaid (a seat held)';
  await page.locator('#buy select[name=buyer]').selectOption({ index: 1 });
  const other = page.locator('#buy select[name=product_id] option', { hasText: 'Environment painting' });
  await page.locator('#buy select[name=product_id]').selectOption(await other.getAttribute('value'));
  await Promise.all([
    page.waitForURL(/\/sandbox\/stripe\/checkout\//),
    page.getByRole('button', { name: 'Buy with Stripe' }).click(),
  ]);
  await page.goto(`${base}/dev`);
  await page.locator('#orders td.status-pending').first().waitFor();
  await page.locator('#waiting', { hasText: 'checkout hold' }).waitFor();

  if (process.env.SCREENSHOT) {
    step = `taking a screenshot into ${process.env.SCREENSHOT}`;
    await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  }
  console.log(`paid: ${buyerEmail} bought "${PRODUCT}" through the console and the stand-ins, connected Discord, got access and booked a session`);
} catch (error) {
  console.error(`browser test failed while ${step}: ${error.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
