// The demo's domain: a multi-tenant ledger. Pure: events, folds, decisions and the view.
import { defineView, type EnvelopeOf } from 'jetsource';

export type BankEvents = {
  AccountOpened: { owner: string };
  Deposited: { amount: number };
  Withdrawn: { amount: number };
  TransferredOut: { amount: number; to: string; transferId: string };
  TransferredIn: { amount: number; from: string; transferId: string };
};
export type BankEvent = EnvelopeOf<BankEvents>;

export const account = (id: string) => ({ type: 'account', id });

export interface Account {
  readonly opened: boolean;
  readonly owner: string;
  readonly balance: number;
}

export const closedAccount: Account = { opened: false, owner: '', balance: 0 };

/** Balance change of one event. */
export function delta(event: BankEvent): number {
  switch (event.type) {
    case 'Deposited':
    case 'TransferredIn':
      return event.data.amount;
    case 'Withdrawn':
    case 'TransferredOut':
      return -event.data.amount;
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

export function requireAmount(amount: number): void {
  if (!Number.isFinite(amount) || amount <= 0 || Math.round(amount * 100) !== amount * 100) {
    throw new RuleViolation('Enter a positive amount with at most two decimals.');
  }
}

export function requireOpen(state: Account, id: string): void {
  if (!state.opened) throw new RuleViolation(`Account "${id}" does not exist.`);
}

/** No overdraft: decided on the loaded state, enforced by the version it was loaded at. */
export function requireFunds(state: Account, id: string, amount: number): void {
  if (state.balance < amount) {
    throw new RuleViolation(`Insufficient funds: ${id} has ${money(state.balance)}, needs ${money(amount)}.`);
  }
}

export const money = (n: number) => n.toLocaleString('en-US', { style: 'currency', currency: 'USD' });

/** One row of the live balances view. */
export interface AccountSummary {
  readonly owner: string;
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
