// A signed-in user: the browser connects straight to nats-server over WebSocket with the
// tenant user's credentials. There is no backend for reads or appends.
import type { NatsConnection } from '@nats-io/nats-core';
import {
  ConcurrencyError,
  connect,
  connectionState,
  createEventStore,
  openView,
  shareLive,
  type EntityWrite,
  type JetStreamEventStore,
} from 'jetsource';
import {
  account,
  accountFold,
  balancesView,
  bankSchemas,
  requireCents,
  requireFunds,
  requireOpen,
  RuleViolation,
  money,
  type AccountSummary,
  type BankEvents,
} from './domain.js';

declare const __NATS_WS__: string | undefined;
/** Where the tenants' events and views live (config/tenants.json, passed in by `npm start`). */
declare const __DEMO_STORE__:
  { prefix: string; stream: string; viewsBucket: string; tenants: string[] } | undefined;

/** The store layout `npm start` passed in, or the defaults of a plain `vite` run. */
export const demoStore =
  typeof __DEMO_STORE__ === 'object'
    ? __DEMO_STORE__
    : { prefix: 'es', stream: 'EVENTS', viewsBucket: 'views', tenants: ['acme', 'globex'] };

export type Role = 'writer' | 'reader';

export function natsUrl(): string {
  const fromQuery = new URLSearchParams(location.search).get('nats');
  return fromQuery ?? (typeof __NATS_WS__ === 'string' ? __NATS_WS__ : `ws://${location.hostname}:8080`);
}

/** What a command will write, and the versions it was decided on. */
export interface Decision {
  readonly summary: string;
  readonly writes: ReadonlyArray<EntityWrite<BankEvents>>;
}

/** How a command ended. */
export interface Outcome {
  readonly sequences: number[];
  /** Conflicts met and resolved by deciding again on fresh state. */
  readonly conflicts: string[];
}

export class Session {
  readonly store: JetStreamEventStore<BankEvents>;
  readonly balances;
  readonly status;
  readonly feed;

  private constructor(
    readonly nc: NatsConnection,
    readonly tenant: string,
    readonly role: Role,
  ) {
    const { prefix, stream, viewsBucket: bucket } = demoStore;
    this.store = createEventStore<BankEvents>({
      connection: nc,
      tenant,
      prefix,
      stream,
      schemas: bankSchemas,
    });
    // Shared so every panel uses one consumer, kept for 2 s across re-renders.
    this.balances = openView<AccountSummary>(this.store, balancesView, { bucket })
      .watchAll()
      .pipe(shareLive(2000));
    this.status = connectionState(nc).pipe(shareLive(0));
    // The ledger's own entity type: other apps of the tenant (the quick start's wallets) stay out.
    // Events that fail the schemas show as unreadable instead of stopping the feed.
    this.feed = this.store.watch({ entityType: 'account' }, { onMalformed: 'report' }).pipe(shareLive(2000));
  }

  static async open(tenant: string, role: Role): Promise<Session> {
    const nc = await connect({
      servers: natsUrl(),
      user: `${tenant}-${role}`,
      pass: `dev-${tenant}-${role}`, // the bundled development credentials
      inboxPrefix: `_INBOX_${tenant}_${role}`,
      apiPrefix: 'JS.API', // the JetStream API as the bundled config imports it into role accounts
      tenant,
      name: `jetsource demo (${tenant} ${role})`,
    });
    return new Session(nc, tenant, role);
  }

  async close(): Promise<void> {
    await this.nc.close();
  }

  openAccount(id: string, owner: string): Promise<Outcome> {
    return this.run(async () => {
      if (!owner.trim()) throw new RuleViolation('Enter the owner’s name.');
      if (await this.store.version(account(id))) throw new RuleViolation(`Account "${id}" already exists.`);
      return {
        summary: `Open ${id} for ${owner}`,
        writes: [
          {
            entity: account(id),
            events: [{ type: 'AccountOpened', data: { owner: owner.trim() } }],
            expect: 'new',
          },
        ],
      };
    });
  }

  /** Amounts are in cents (see `parseAmount`). */
  deposit(id: string, cents: number): Promise<Outcome> {
    return this.run(() => this.decideDeposit(id, cents));
  }

  async decideDeposit(id: string, cents: number): Promise<Decision> {
    requireCents(cents);
    const { state, version } = await this.store.load(account(id), accountFold);
    requireOpen(state, id);
    return {
      summary: `Deposit ${money(cents)} to ${id}`,
      writes: [{ entity: account(id), events: [{ type: 'Deposited', data: { cents } }], expect: version }],
    };
  }

  async decideWithdraw(id: string, cents: number): Promise<Decision> {
    requireCents(cents);
    const { state, version } = await this.store.load(account(id), accountFold);
    requireOpen(state, id);
    requireFunds(state, id, cents);
    return {
      summary: `Withdraw ${money(cents)} from ${id} (balance ${money(state.balance)} at #${version})`,
      writes: [{ entity: account(id), events: [{ type: 'Withdrawn', data: { cents } }], expect: version }],
    };
  }

  /** A transfer is one atomic append across both accounts, each guarded by its version. */
  async decideTransfer(from: string, to: string, cents: number): Promise<Decision> {
    requireCents(cents);
    if (from === to) throw new RuleViolation('Pick two different accounts.');
    const [source, target] = await Promise.all([
      this.store.load(account(from), accountFold),
      this.store.load(account(to), accountFold),
    ]);
    requireOpen(source.state, from);
    requireOpen(target.state, to);
    requireFunds(source.state, from, cents);
    const transferId = crypto.randomUUID?.() ?? `${Date.now()}`;
    return {
      summary: `Transfer ${money(cents)} from ${from} (balance ${money(source.state.balance)} at #${source.version}) to ${to}`,
      writes: [
        {
          entity: account(from),
          events: [{ type: 'TransferredOut', data: { cents, to, transferId } }],
          expect: source.version,
        },
        {
          entity: account(to),
          events: [{ type: 'TransferredIn', data: { cents, from, transferId } }],
          expect: target.version,
        },
      ],
    };
  }

  /**
   * Appends a decision. On a conflict the state is loaded and the rule decided again
   * (up to three times): a stale decision is never written, and a rule that no longer
   * holds is reported rather than overwritten.
   */
  async run(decide: () => Promise<Decision>, first?: Decision): Promise<Outcome> {
    const conflicts: string[] = [];
    let decision = first ?? (await decide());
    for (let attempt = 1; ; attempt++) {
      try {
        const results = await this.store.appendAll(decision.writes);
        return { sequences: results.flatMap((r) => r.sequences), conflicts };
      } catch (err) {
        if (!(err instanceof ConcurrencyError) || attempt >= 3) throw err;
        conflicts.push(
          `${err.entity} changed while you were deciding (expected #${err.expected}, now #${err.actual}).`,
        );
        try {
          decision = await decide();
        } catch (rule) {
          if (rule instanceof RuleViolation)
            throw new RuleViolation(`${conflicts.join(' ')} Re-checked: ${rule.message}`);
          throw rule;
        }
      }
    }
  }
}
