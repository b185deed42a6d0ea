// Shared e2e plumbing: Debian's Chromium through playwright-core, the demo stack, screenshots.
import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { expect } from 'vitest';
import { startDemoStack, type DemoStack } from '../demo/server/stack.js';

export { launchChromium as launchBrowser } from '../test/support/chromium.js';

export { startDemoStack, type DemoStack };

/** Signs in on a fresh page and waits until the feed has caught up. */
export async function signIn(
  browser: Browser,
  stack: DemoStack,
  tenant: string,
  role: 'writer' | 'reader' = 'writer',
): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(stack.url);
  await page.selectOption('select[name=tenant]', tenant);
  await page.selectOption('select[name=role]', role);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=feed-progress][data-caught-up]', { timeout: 30_000 });
  expect(await page.textContent('[data-testid=identity]')).toBe(`${tenant} · ${role}`);
  (page as Page & { errors: string[] }).errors = errors;
  return page;
}

export async function openAccount(page: Page, id: string, owner: string): Promise<void> {
  await page.fill('form[data-action=open] input[name=id]', id);
  await page.fill('form[data-action=open] input[name=owner]', owner);
  await page.click('form[data-action=open] button');
  await expect.poll(() => page.textContent('[data-testid=message]')).toContain(`Opened ${id}`);
}

export async function deposit(page: Page, id: string, amount: number): Promise<void> {
  await page.fill('form[data-action=deposit] input[name=id]', id);
  await page.fill('form[data-action=deposit] input[name=amount]', String(amount));
  await page.click('form[data-action=deposit] button');
  await expect.poll(() => page.textContent('[data-testid=message]')).toContain(`Deposited to ${id}`);
}

/** Fills a reviewed command (withdraw or transfer) and waits for its review card. */
export async function review(
  page: Page,
  action: 'withdraw' | 'transfer',
  fields: Record<string, string | number>,
): Promise<void> {
  for (const [name, value] of Object.entries(fields))
    await page.fill(`form[data-action=${action}] input[name=${name}]`, String(value));
  await page.click(`form[data-action=${action}] button`);
  await page.waitForSelector('[data-testid=confirm]');
}

export const balanceOf = (page: Page, id: string) => page.textContent(`[data-testid=balance-${id}]`);

/** The event sequences a page's feed shows, newest first. */
export const feedSequences = (page: Page) =>
  page.$$eval('[data-testid=feed] li', (items) =>
    items.map((li) => Number((li as HTMLElement).dataset.sequence)),
  );

const SHOTS = 'test-results/e2e';

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

export const pageErrors = (page: Page) => (page as Page & { errors: string[] }).errors;
