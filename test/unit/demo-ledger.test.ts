import { describe, expect, test } from 'vitest';
import { MalformedEventError, ValidationError } from '../../src/index.js';
import { createMemoryEventStore } from '../../src/testing/index.js';
import {
  account,
  accountFold,
  bankSchemas,
  money,
  parseAmount,
  requireFunds,
  RuleViolation,
  type BankEvents,
} from '../../demo/src/domain.js';

describe('demo ledger: money in integer cents', () => {
  test('amounts are read as typed, without a float on the way', () => {
    expect(parseAmount('1.15')).toBe(115); // 1.15 * 100 is 114.99999999999999 as a float
    expect(parseAmount('0.8')).toBe(80);
    expect(parseAmount(' 12 ')).toBe(1200);
    expect(parseAmount('0.07')).toBe(7);
    expect(parseAmount('.5')).toBe(50);
    for (const bad of ['', '0', '0.00', '-1', '1.155', '1e3', 'abc', '1.', '.', '12345678901234'])
      expect(() => parseAmount(bad), bad).toThrow(RuleViolation);
  });

  test('0.70 + 0.10 is exactly 0.80: it can all be withdrawn', async () => {
    const store = createMemoryEventStore<BankEvents>({ tenant: 'acme' });
    await store.append(account('a'), [
      { type: 'AccountOpened', data: { owner: 'A' } },
      { type: 'Deposited', data: { cents: parseAmount('0.70') } },
      { type: 'Deposited', data: { cents: parseAmount('0.10') } },
    ]);
    const { state } = await store.load(account('a'), accountFold);
    expect(() => requireFunds(state, 'a', parseAmount('0.80'))).not.toThrow();
    expect(() => requireFunds(state, 'a', parseAmount('0.81'))).toThrow('has $0.80, needs $0.81');
    expect(money(state.balance)).toBe('$0.80');
  });

  test('an event in dollars, as an older demo stored them, is refused, never folded as NaN', async () => {
    const store = createMemoryEventStore<BankEvents>({ tenant: 'acme', schemas: bankSchemas });
    await store.append(account('a'), { type: 'AccountOpened', data: { owner: 'A' } });
    const old = { amount: 1.15 } as unknown as { cents: number };
    await expect(store.append(account('a'), { type: 'Deposited', data: old })).rejects.toBeInstanceOf(
      ValidationError,
    );
    store.appendRaw({
      subject: store.format.scheme.event(account('a'), 'Deposited'),
      data: new TextEncoder().encode('{"amount":1.15}'),
      headers: [['Nats-Msg-Id', 'from-an-older-demo']],
    });
    const failure = await store.load(account('a'), accountFold).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(MalformedEventError);
    expect((failure as Error).message).toMatch(/cents must be a positive whole number/);
  });
});
