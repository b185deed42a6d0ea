// The bank domain shared by the worker (writes, reads the view) and the projector (builds it).
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { defineView, type EventSchemas } from 'jetsource';

export type Bank = { Deposited: { amount: number } };

// Any Standard Schema validator fits (zod, valibot); written by hand to keep the example dependency-free.
const deposited: StandardSchemaV1<unknown, Bank['Deposited']> = {
  '~standard': {
    version: 1,
    vendor: 'bank-example',
    validate: (value) => {
      const amount = (value as { amount?: unknown } | null)?.amount;
      return typeof amount === 'number' && Number.isFinite(amount) && amount > 0
        ? { value: { amount } }
        : { issues: [{ message: 'must be a positive number', path: ['amount'] }] };
    },
  },
};

export const schemas: EventSchemas<Bank> = { Deposited: deposited };

/** Balance per account, kept in KV by a projector and read by the worker. */
export const balances = defineView<number, Bank>({
  name: 'balances',
  version: 1,
  filter: { entityType: 'account' },
  initial: 0,
  evolve: (total, e) => total + e.data.amount,
});
