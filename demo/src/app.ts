import type { Subscription } from 'rxjs';
import { h, render } from './ui/dom.js';
import type { Session } from './session.js';
import { accountsPanel } from './ui/accounts.js';
import { actionsPanel } from './ui/actions.js';
import { feedPanel } from './ui/feed.js';
import { inspectorPanel } from './ui/inspector.js';

/** The signed-in screen: status bar, balances, commands, live feed and inspector. */
export function mountApp(root: HTMLElement, session: Session, signOut: () => void): void {
  const subscriptions: Subscription[] = [];
  const status = h('span', { class: 'pill', dataset: { testid: 'status' } }, 'connecting');
  subscriptions.push(
    session.status.subscribe((state) => {
      status.textContent =
        state === 'connected'
          ? 'connected'
          : state === 'reconnecting' || state === 'disconnected'
            ? 'reconnecting…'
            : 'offline';
      status.className = `pill ${state}`;
    }),
  );
  const inspector = inspectorPanel(session);
  const accounts = accountsPanel(session, (id) => inspector.show(id));
  const actions = actionsPanel(session);
  const feed = feedPanel(session, (id) => inspector.show(id));
  subscriptions.push(accounts.subscription, feed.subscription, inspector.subscription);
  const leave = h(
    'button',
    {
      class: 'ghost',
      onclick: async () => {
        subscriptions.forEach((s) => s.unsubscribe());
        await session.close();
        signOut();
      },
    },
    'Sign out',
  );
  render(
    root,
    h(
      'div',
      { class: 'shell' },
      h(
        'header',
        {},
        h('strong', { class: 'brand' }, 'jetsource ledger'),
        h(
          'span',
          { class: 'tenant', dataset: { testid: 'identity' } },
          `${session.tenant} · ${session.role}`,
        ),
        session.role === 'reader' ? h('span', { class: 'pill readonly' }, 'read-only') : null,
        h('span', { class: 'spacer' }),
        status,
        leave,
      ),
      h(
        'main',
        { class: 'grid' },
        h('div', { class: 'column' }, accounts.element, actions),
        h('div', { class: 'column' }, feed.element, inspector.element),
      ),
    ),
  );
}
