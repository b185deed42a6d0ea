// The demo's domain: a multi-tenant ledger. Pure: events, folds, decisions and the view.
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { defineView, type EnvelopeOf, type EventSchemas } from 'jetsource';

// Money is integer cents: binary floats cannot hold $0.10, and sums of them drift.
export type BankEvents = {
  AccountOpened: { owner: string };
  Deposited: { cents: number };
  Withdrawn: { cents: number };
  TransferredOut: { cents: number; to: string; transferId: string };
  TransferredIn: { cents: number; from: string; transferId: string };
};
export type BankEvent = EnvelopeOf<BankEvents>;

/**
 * A Standard Schema from a check that names what is wrong. Any Standard Schema library
 * (zod, valibot, arktype) fits here too; the demo keeps its dependencies to jetsource.
 */
function schema<T>(
  problem: (data: Record<string, unknown>) => string | undefined,
): StandardSchemaV1<unknown, T> {
  return {
    '~standard': {
      version: 1,
      vendor: 'jetsource-demo',
      validate: (data) => {
        const issue =
          typeof data === 'object' && data !== null
            ? problem(data as Record<string, unknown>)
            : 'not an object';
        return issue ? { issues: [{ message: issue }] } : { value: data as T };
      },
    },
  };
}

const cents = (d: Record<string, unknown>) =>
  Number.isSafeInteger(d.cents) && (d.cents as number) > 0
    ? undefined
    : 'cents must be a positive whole number';
const text = (d: Record<string, unknown>, key: string) =>
  typeof d[key] === 'string' && d[key] !== '' ? undefined : `${key} must be a non-empty string`;

/**
 * Checked on every append and every read: a stored event of another shape (say, from an
 * older version of the demo) is reported as malformed, never folded into a balance.
 */
export const bankSchemas: EventSchemas<BankEvents> = {
  AccountOpened: schema((d) => text(d, 'owner')),
  Deposited: schema(cents),
  Withdrawn: schema(cents),
  TransferredOut: schema((d) => cents(d) ?? text(d, 'to') ?? text(d, 'transferId')),
  TransferredIn: schema((d) => cents(d) ?? text(d, 'from') ?? text(d, 'transferId')),
};

export const account = (id: string) => ({ type: 'account', id });

export interface Account {
  readonly opened: boolean;
  readonly owner: string;
  /** In cents. */
  readonly balance: number;
}

export const closedAccount: Account = { opened: false, owner: '', balance: 0 };

/** Balance change of one event, in cents. */
export function delta(event: BankEvent): number {
  switch (event.type) {
    case 'Deposited':
    case 'TransferredIn':
      return event.data.cents;
    case 'Withdrawn':
    case 'TransferredOut':
      return -event.data.cents;
    default:
      return 0;
  }
}

export function evolveAccount(state: Account, event: BankEvent): Account {
  if (event.type === 'AccountOpened') return { opened: true, owner: event.data.owner, balance: 0 };
  return { ...state, balance: state.balance + delta(event) };
}

export const accountFold = { initial: closedAccount, evolve: evolveAccount };

/** A business rule said no; the message is for the user. */
export class RuleViolation extends Error {
  override name = 'RuleViolation';
}

/** Reads a dollar amount as typed ("12", "1.15", "0.8") into cents, exactly: no float on the way. */
export function parseAmount(text: string): number {
  const match = /^(\d{0,13})(?:\.(\d{1,2}))?$/.exec(text.trim());
  const cents = match ? Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0')) : 0;
  if (cents <= 0) throw new RuleViolation('Enter a positive amount with at most two decimals, e.g. 12.50.');
  return cents;
}

export function requireCents(cents: number): void {
  if (!Number.isSafeInteger(cents) || cents <= 0)
    throw new RuleViolation('Amounts are positive whole cents.');
}

export function requireOpen(state: Account, id: string): void {
  if (!state.opened) throw new RuleViolation(`Account "${id}" does not exist.`);
}

/** No overdraft: decided on the loaded state, enforced by the version it was loaded at. */
export function requireFunds(state: Account, id: string, cents: number): void {
  if (state.balance < cents) {
    throw new RuleViolation(`Insufficient funds: ${id} has ${money(state.balance)}, needs ${money(cents)}.`);
  }
}

/** Cents as dollars, for people. */
export const money = (cents: number) =>
  (cents / 100).toLocaleString('en-US', { style: 'currency', currency: 'USD' });

/** One row of the live balances view. */
export interface AccountSummary {
  readonly owner: string;
  /** In cents. */
  readonly balance: number;
  readonly events: number;
}

/** Balances per account, maintained in KV by the projector. */
export const balancesView = defineView<AccountSummary, BankEvents>({
  name: 'balances',
  version: 1,
  filter: { entityType: 'account' },
  initial: { owner: '', balance: 0, events: 0 },
  evolve: (s, e) => ({
    owner: e.type === 'AccountOpened' ? e.data.owner : s.owner,
    balance: s.balance + delta(e),
    events: s.events + 1,
  }),
});

/** Every view of the demo, for `npm start` and `npm run view:rebuild`. */
export const views = [balancesView];
