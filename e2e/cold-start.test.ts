import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createEventStore } from '../src/index.js';
import type { BankEvents } from '../demo/src/domain.js';
import { balanceOf, launchBrowser, screenshot, signIn, startDemoStack, type DemoStack } from './support.js';

const EVENTS = 10_000;
let stack: DemoStack;
let browser: Browser;

beforeAll(async () => {
  [stack, browser] = await Promise.all([startDemoStack(), launchBrowser()]);
  const store = createEventStore<BankEvents>({ connection: await stack.service('globex'), tenant: 'globex' });
  const accounts = 20;
  await store.appendAll(
    Array.from({ length: accounts }, (_, i) => ({
      entity: { type: 'account', id: `acct-${i}` },
      events: [{ type: 'AccountOpened' as const, data: { owner: `Owner ${i}` } }],
    })),
  );
  for (let written = accounts; written < EVENTS; written += 500) {
    await store.appendAll(
      Array.from({ length: accounts }, (_, i) => ({
        entity: { type: 'account', id: `acct-${i}` },
        events: Array.from({ length: Math.min(500, EVENTS - written) / accounts }, () => ({
          type: 'Deposited' as const,
          data: { cents: 100 },
        })),
      })),
    );
  }
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

test(`cold start: first load to caught-up on a tenant with ${EVENTS} events`, async () => {
  const started = Date.now();
  const page = await signIn(browser, stack, 'globex');
  const wall = Date.now() - started;
  const watchMs = Number(await page.getAttribute('[data-testid=feed-progress]', 'data-caught-up'));
  expect(await page.getAttribute('[data-testid=feed]', 'data-received')).toBe(String(EVENTS));
  await expect.poll(() => balanceOf(page, 'acct-7')).toBe(`$${((EVENTS - 20) / 20).toFixed(2)}`);
  console.log(
    `cold start (${EVENTS} events): caught up ${watchMs} ms after subscribing; ${wall} ms from page load to caught-up`,
  );
  await screenshot(page, 'cold-start');
}, 120_000);
