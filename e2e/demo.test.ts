import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEventStore } from '../src/index.js';
import type { BankEvents } from '../demo/src/domain.js';
import {
  balanceOf,
  deposit,
  feedSequences,
  launchBrowser,
  openAccount,
  pageErrors,
  review,
  screenshot,
  signIn,
  startDemoStack,
  type DemoStack,
} from './support.js';

let stack: DemoStack;
let browser: Browser;

beforeAll(async () => {
  // Each side is kept as soon as it is up, so afterAll stops it even if the other failed.
  const started = await Promise.allSettled([
    startDemoStack().then((s) => (stack = s)),
    launchBrowser().then((b) => (browser = b)),
  ]);
  for (const side of started) if (side.status === 'rejected') throw side.reason;
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('demo app in Chromium', () => {
  test('same tenant: a transfer in one tab appears in the other tab’s feed and balances', async () => {
    const [a, b] = [await signIn(browser, stack, 'acme'), await signIn(browser, stack, 'acme')];
    await openAccount(a, 'alice', 'Alice');
    await openAccount(a, 'bob', 'Bob');
    await deposit(a, 'alice', 100);
    // Tab B inspects alice before the transfer: the inspector follows her live.
    await expect.poll(() => balanceOf(b, 'alice')).toBe('$100.00');
    await b.click('[data-testid=balance-alice]');
    await expect.poll(() => b.textContent('[data-testid=inspector]')).toContain('Deposited');
    await review(a, 'transfer', { from: 'alice', to: 'bob', amount: 30 });
    await a.click('[data-testid=confirm]');
    await expect.poll(() => a.textContent('[data-testid=message]')).toContain('Transferred alice → bob');
    await expect.poll(() => balanceOf(b, 'alice')).toBe('$70.00');
    await expect.poll(() => balanceOf(b, 'bob')).toBe('$30.00');
    // The transfer's two events are the newest, live in tab B.
    const service = createEventStore<BankEvents>({ connection: await stack.service('acme'), tenant: 'acme' });
    const last = await service.lastSequence();
    const newest: string[] = [];
    for await (const e of service.read({}, { after: last - 2 })) newest.push(e.type);
    expect(newest).toEqual(['TransferredOut', 'TransferredIn']);
    await expect.poll(async () => (await feedSequences(b)).slice(0, 2)).toEqual([last, last - 1]);
    await expect.poll(() => b.textContent('[data-testid=inspector]')).toContain('TransferredOut');
    expect(await b.textContent('[data-testid=inspector]')).toContain('balance $70.00');
    await screenshot(b, 'same-tenant');
    expect([...pageErrors(a), ...pageErrors(b)]).toEqual([]);
  }, 60_000);

  test('conflict: a write decided on stale state is refused and decided again, never overdrawn', async () => {
    const [a, b] = [await signIn(browser, stack, 'acme'), await signIn(browser, stack, 'acme')];
    await openAccount(a, 'carol', 'Carol');
    await deposit(a, 'carol', 100);
    await review(a, 'withdraw', { id: 'carol', amount: 80 }); // A looks at $100 and hesitates…
    await review(b, 'withdraw', { id: 'carol', amount: 50 });
    await b.click('[data-testid=confirm]'); // …while B withdraws first.
    await expect.poll(() => b.textContent('[data-testid=message]')).toContain('Withdrew from carol');
    await a.click('[data-testid=confirm]');
    await expect
      .poll(() => a.textContent('[data-testid=message]'))
      .toContain('changed while you were deciding');
    expect(await a.textContent('[data-testid=message]')).toContain('Insufficient funds: carol has $50.00');
    await expect.poll(() => balanceOf(a, 'carol')).toBe('$50.00');
    await screenshot(a, 'conflict');
  }, 60_000);

  test('isolation: acme and globex side by side never see each other’s data', async () => {
    const [acme, globex] = [await signIn(browser, stack, 'acme'), await signIn(browser, stack, 'globex')];
    await openAccount(globex, 'gina', 'Gina');
    await deposit(globex, 'gina', 1.15); // as a float, 1.15 * 100 is 114.99999999999999
    await openAccount(acme, 'dave', 'Dave');
    await expect.poll(() => balanceOf(globex, 'gina')).toBe('$1.15');
    await expect.poll(() => balanceOf(acme, 'dave')).toBe('$0.00');
    const acmeText = (await acme.textContent('main'))!;
    const globexText = (await globex.textContent('main'))!;
    expect(acmeText).not.toContain('gina');
    expect(globexText).not.toContain('dave');
    expect(await globex.$$eval('[data-testid=feed] li', (l) => l.length)).toBe(2);
    await screenshot(globex, 'isolation-globex');
  }, 60_000);

  test('read-only: a reader sees everything but its write is refused in the UI', async () => {
    const writer = await signIn(browser, stack, 'acme');
    await openAccount(writer, 'rita', 'Rita');
    await deposit(writer, 'rita', 70);
    const reader = await signIn(browser, stack, 'acme', 'reader');
    await expect.poll(() => balanceOf(reader, 'rita')).toBe('$70.00');
    await reader.fill('form[data-action=deposit] input[name=id]', 'rita');
    await reader.fill('form[data-action=deposit] input[name=amount]', '5');
    await reader.click('form[data-action=deposit] button');
    await expect
      .poll(() => reader.textContent('[data-testid=message]'))
      .toContain('Read-only: your role cannot write');
    expect(await balanceOf(reader, 'rita')).toBe('$70.00');
    await screenshot(reader, 'read-only');
  }, 60_000);

  test('a stored event the schemas refuse shows as unreadable and leaves balances alone', async () => {
    const page = await signIn(browser, stack, 'acme');
    await openAccount(page, 'erin', 'Erin');
    await deposit(page, 'erin', 5);
    // Dollars instead of cents, as an older version of the demo stored them.
    const nc = await stack.service('acme');
    const raw = createEventStore({ connection: nc, tenant: 'acme' });
    await raw.append({ type: 'account', id: 'erin' }, { type: 'Deposited', data: { amount: 2.5 } });
    await expect
      .poll(() => page.textContent('[data-testid=feed] li.malformed'))
      .toContain('erinDeposited failed validation: cents must be a positive whole number');
    // Deciding on erin now means loading that event: the UI says why it cannot.
    await page.fill('form[data-action=deposit] input[name=amount]', '1');
    await page.click('form[data-action=deposit] button');
    await expect
      .poll(() => page.textContent('[data-testid=message]'))
      .toContain('cents must be a positive whole number');
    // The projector dead-lettered it and went on: the balance is the valid deposits only,
    // and later events still reach the view.
    await expect.poll(() => balanceOf(page, 'erin')).toBe('$5.00');
    await openAccount(page, 'fred', 'Fred');
    await expect.poll(() => balanceOf(page, 'fred')).toBe('$0.00');
    await page.click('[data-testid=balance-erin]'); // the inspector lists the unreadable event in place
    await expect.poll(() => page.textContent('[data-testid=inspector]')).toContain('Unreadable');
    expect(await page.textContent('[data-testid=inspector]')).toContain('Deposited');
    await screenshot(page, 'unreadable-event');
  }, 60_000);

  test('resilience: a nats-server restart mid-session loses and doubles nothing', async () => {
    const page = await signIn(browser, stack, 'acme');
    const service = createEventStore<BankEvents>({ connection: await stack.service('acme'), tenant: 'acme' });
    const zed = { type: 'account', id: 'zed' };
    await service.append(zed, { type: 'AccountOpened', data: { owner: 'Zed' } });
    let before = 0;
    // What the feed follows: the accounts.
    for await (const _ of service.read({ entityType: 'account' })) before++;
    // The feed has every event so far before the server goes down.
    await expect.poll(() => page.getAttribute('[data-testid=feed]', 'data-received')).toBe(String(before));
    await stack.nats.restart();
    await expect.poll(() => page.textContent('[data-testid=status]'), { timeout: 15_000 }).toBe('connected');
    for (let i = 0; i < 5; i++) await service.append(zed, { type: 'Deposited', data: { cents: 100 } });
    let total = 0;
    for await (const _ of service.read({ entityType: 'account' })) total++;
    expect(total).toBe(before + 5);
    // Every event exactly once: the count matches the store, and the newest are live.
    await expect
      .poll(() => page.getAttribute('[data-testid=feed]', 'data-received'), { timeout: 15_000 })
      .toBe(String(total));
    const shown = await feedSequences(page);
    expect(new Set(shown).size).toBe(shown.length);
    await expect.poll(() => balanceOf(page, 'zed'), { timeout: 15_000 }).toBe('$5.00');
    await screenshot(page, 'after-restart');
  }, 90_000);
});
