// Buys a pack through the dev console in Debian's Chromium: pick a demo buyer and a product on
// /dev, pay on the Stripe stand-in's page, come back, and wait (bounded) until /dev shows the
// order paid. Exits non-zero, saying which step failed, when any step does.
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
  // Until Clerk's profile reaches our users table the console names a buyer by Clerk id.
  const buyerId = await buyer.locator('option').first().getAttribute('value');
  const buyerNamed = new RegExp(`${buyerEmail}|${buyerId}`);
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
  if (process.env.SCREENSHOT) {
    step = `taking a screenshot into ${process.env.SCREENSHOT}`;
    await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  }
  console.log(`paid: ${buyerEmail} bought "${PRODUCT}" through the console and the stand-ins`);
} catch (error) {
  console.error(`browser test failed while ${step}: ${error.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
