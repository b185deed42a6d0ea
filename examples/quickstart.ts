// A runnable tour of jetsource: typed appends with optimistic concurrency, an atomic
// transfer across two entities, replay, and a live watch.
//   npm run example                 its own temporary nats-server with the bundled config
//   npx tsx examples/quickstart.ts  the server `npm start` runs (or JETSOURCE_WS_URL)
// test/integration/examples.test.ts runs it in CI.
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { filter, firstValueFrom } from 'rxjs';
import { connect, createEventStore, isJetsourceError, shareLive, type EnvelopeOf } from 'jetsource';

// 1. Describe your events once; append, read and watch are checked against it.
type Bank = {
  Opened: { owner: string };
  Deposited: { amount: number };
  Withdrawn: { amount: number };
};

const balance = {
  initial: 0,
  evolve: (total: number, e: EnvelopeOf<Bank>) =>
    e.type === 'Deposited' ? total + e.data.amount : e.type === 'Withdrawn' ? total - e.data.amount : total,
};

export async function quickstart(servers: string, log: (line: string) => void = console.log): Promise<void> {
  // 2. Connect as a tenant user. Node 20 has no global WebSocket, so pass a factory.
  const nc = await connect({
    servers,
    user: 'acme-writer',
    pass: 'dev-acme-writer',
    inboxPrefix: '_INBOX_acme_writer',
    apiPrefix: 'JS.API',
    tenant: 'acme',
    wsFactory: async (url) => ({
      socket: new WebSocket(url) as unknown as globalThis.WebSocket,
      encrypted: url.startsWith('wss:'),
    }),
  });
  const store = createEventStore<Bank>({ connection: nc, tenant: 'acme' });
  // Fresh ids each run, so 'new' holds on a second run. The demo owns type 'account'.
  const run = Date.now().toString(36);
  const alice = { type: 'wallet', id: `alice-${run}` };
  const bob = { type: 'wallet', id: `bob-${run}` };

  // 3. A live watch of every wallet. It emits history, a caught-up marker, then live
  //    events; with after: 'new' there is no history, so caught-up means "now live".
  let lastSeen = 0;
  const feed = store.watch({ entityType: 'wallet' }, { after: 'new' }).pipe(shareLive());
  const printing = feed.subscribe((m) => {
    if (m.kind !== 'event') return;
    lastSeen = m.event.sequence;
    log(`  live  #${m.event.sequence} ${m.event.entity.id} ${m.event.type} ${JSON.stringify(m.event.data)}`);
  });
  await firstValueFrom(feed.pipe(filter((m) => m.kind === 'caught-up')));

  // 4. Create two wallets; 'new' fails if the id is taken.
  await store.append(
    alice,
    [
      { type: 'Opened', data: { owner: 'Alice' } },
      { type: 'Deposited', data: { amount: 100 } },
    ],
    { expect: 'new' },
  );
  await store.append(bob, { type: 'Opened', data: { owner: 'Bob' } }, { expect: 'new' });

  // 5. Transfer atomically, each side guarded by the version it was decided on.
  const from = await store.load(alice, balance);
  const to = await store.load(bob, balance);
  if (from.state < 30) throw new Error('insufficient funds');
  await store.appendAll([
    { entity: alice, events: [{ type: 'Withdrawn', data: { amount: 30 } }], expect: from.version },
    { entity: bob, events: [{ type: 'Deposited', data: { amount: 30 } }], expect: to.version },
  ]);

  // 6. A stale writer is refused by the server, not silently overwritten.
  try {
    await store.append(alice, { type: 'Withdrawn', data: { amount: 100 } }, { expect: from.version });
  } catch (err) {
    // isJetsourceError, not instanceof: it holds across bundles and module formats.
    if (!isJetsourceError(err, 'CONCURRENCY')) throw err;
    log(`  conflict: ${err.message}`);
  }

  // 7. Replay: a bounded, streamed read.
  for await (const e of store.read(alice)) log(`  read  #${e.sequence} ${e.type} ${JSON.stringify(e.data)}`);
  log(
    `  balances: alice ${(await store.load(alice, balance)).state}, bob ${(await store.load(bob, balance)).state}`,
  );
  // A filter naming an event type reads only those events, typed as them: no type check.
  let deposited = 0;
  for await (const d of store.read({ entityType: 'wallet', entityId: bob.id, eventType: 'Deposited' }))
    deposited += d.data.amount;
  log(`  bob's deposits: ${deposited}`);

  // 8. A bounded watch: replay Bob's history, then complete at caught-up.
  const caughtUp = await firstValueFrom(
    store.watch(bob, { noWait: true }).pipe(filter((m) => m.kind === 'caught-up')),
  );
  log(`  bob caught up at #${caughtUp.sequence} after ${caughtUp.progress.delivered} events`);

  // 9. Live events arrive asynchronously: wait for the feed to see the transfer, then stop.
  const last = await store.version(bob);
  await firstValueFrom(feed.pipe(filter(() => lastSeen >= last)));
  printing.unsubscribe();
  await nc.close();
}

// Run directly: against the server `npm start` runs, which has created the store.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const servers = process.env.JETSOURCE_WS_URL ?? `ws://127.0.0.1:${process.env.JETSOURCE_WS_PORT ?? 8080}`;
  quickstart(servers).catch((err: Error) => {
    console.error(`quickstart failed against ${servers}: ${err.message}`);
    console.error('Start the server first (npm start), or run npm run example for a temporary one.');
    process.exit(1);
  });
}
