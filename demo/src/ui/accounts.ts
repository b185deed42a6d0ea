import type { Subscription } from 'rxjs';
import { money } from '../domain.js';
import type { Session } from '../session.js';
import { h, render } from './dom.js';

/** Live balances from the KV view the projector maintains. */
export function accountsPanel(
  session: Session,
  inspect: (id: string) => void,
): { element: HTMLElement; subscription: Subscription } {
  const body = h('tbody', {}, h('tr', {}, h('td', { colSpan: 3, class: 'muted' }, 'Loading balances…')));
  const total = h('span', { class: 'muted' });
  const subscription = session.balances.subscribe({
    next: (entries) => {
      const rows = [...entries.values()].sort((a, b) => a.key.localeCompare(b.key));
      total.textContent = rows.length
        ? `${rows.length} accounts · ${money(rows.reduce((n, r) => n + r.state.balance, 0))}`
        : '';
      if (rows.length === 0)
        return render(
          body,
          h('tr', {}, h('td', { colSpan: 3, class: 'muted' }, 'No accounts yet. Open one below.')),
        );
      render(
        body,
        ...rows.map((r) =>
          h(
            'tr',
            {
              dataset: { account: r.key },
              onclick: () => inspect(r.key),
              title: `updated by event #${r.sequence}`,
            },
            h(
              'td',
              {},
              h('span', { class: 'account-id' }, r.key),
              h('span', { class: 'muted small' }, r.state.owner),
            ),
            h('td', { class: 'num', dataset: { testid: `balance-${r.key}` } }, money(r.state.balance)),
            h('td', { class: 'num muted small' }, `#${r.sequence}`),
          ),
        ),
      );
    },
    error: (err) =>
      render(
        body,
        h(
          'tr',
          {},
          h('td', { colSpan: 3, class: 'error' }, `Balances unavailable: ${(err as Error).message}`),
        ),
      ),
  });
  const element = h(
    'section',
    { class: 'card', dataset: { testid: 'balances' } },
    h('div', { class: 'card-title' }, h('h2', {}, 'Balances'), total),
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'Account'),
          h('th', { class: 'num' }, 'Balance'),
          h('th', { class: 'num' }, 'As of'),
        ),
      ),
      body,
    ),
  );
  return { element, subscription };
}
