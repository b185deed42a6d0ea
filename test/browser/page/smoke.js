// Runs in Chromium against the built package, resolved by the page's import map only.
// Reports to window.__result for test/browser/smoke.test.ts.
import { connect, createEventStore, isJetsourceError, openView } from 'jetsource';
import { filter, firstValueFrom, takeWhile, timeout, toArray } from 'rxjs';

const params = new URLSearchParams(location.search);

async function smoke() {
  const nc = await connect({
    servers: params.get('ws'),
    user: 'acme-writer',
    pass: 'dev-acme-writer',
    inboxPrefix: '_INBOX_acme_writer',
    apiPrefix: 'JS.API',
    tenant: 'acme',
  });
  try {
    const store = createEventStore({ connection: nc, tenant: 'acme' });
    const account = { type: 'account', id: params.get('id') };
    const appended = await store.append(
      account,
      [
        { type: 'Opened', data: { owner: 'Ann' } },
        { type: 'Deposited', data: { amount: 5 } },
      ],
      { expect: 'new' },
    );
    let conflict = null;
    await store
      .append(account, { type: 'Deposited', data: { amount: 1 } }, { expect: 'new' })
      .catch((err) => {
        conflict = isJetsourceError(err, 'CONCURRENCY') ? err.name : String(err);
      });
    const watched = await firstValueFrom(
      store.watch(account).pipe(
        takeWhile((m) => m.kind !== 'caught-up', true),
        toArray(),
        timeout(10_000),
      ),
    );
    const read = [];
    for await (const e of store.read(account)) read.push(e.type);
    // A projector in Node folds the view; the page watches the key until it has folded our write.
    const balances = openView(store, { name: 'balances', version: 1 });
    const live = await firstValueFrom(
      balances.watch(account.id).pipe(
        filter((entry) => entry !== null && entry.sequence >= appended.version),
        timeout(10_000),
      ),
    );
    const got = await balances.get(account.id);
    return {
      ok: true,
      version: appended.version,
      conflict,
      watched: watched.map((m) => (m.kind === 'event' ? m.event.type : m.kind)),
      read,
      view: { live: live.state, get: got && got.state },
    };
  } finally {
    await nc.close();
  }
}

window.__result = await smoke().catch((err) => ({
  ok: false,
  error: String(err && err.stack ? err.stack : err),
}));
