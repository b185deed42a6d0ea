import { accountFold, account, money, type Account, type BankEvent } from '../domain.js';
import type { Session } from '../session.js';
import { h, render } from './dom.js';

/** One entity's history with sequences and headers, and time travel by sequence. */
export function inspectorPanel(session: Session): { element: HTMLElement; show(id: string): Promise<void> } {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Click an account or an event to see its history.'));
  const element = h(
    'section',
    { class: 'card', dataset: { testid: 'inspector' } },
    h('div', { class: 'card-title' }, h('h2', {}, 'Inspector')),
    body,
  );

  async function show(id: string): Promise<void> {
    const events: BankEvent[] = [];
    try {
      for await (const e of session.store.read(account(id))) events.push(e);
    } catch (err) {
      // An unreadable event or a lost connection: say so rather than keep a stale history.
      return render(body, h('p', { class: 'error' }, `Cannot show ${id}: ${(err as Error).message}`));
    }
    if (events.length === 0) return render(body, h('p', { class: 'muted' }, `${id} has no events.`));
    const state = h('p', { class: 'state' });
    const rows = events.map((e) =>
      h(
        'tr',
        {},
        h('td', { class: 'seq' }, `#${e.sequence}`),
        h('td', {}, e.type),
        h('td', { class: 'mono small' }, JSON.stringify(e.data)),
        h(
          'td',
          { class: 'mono small muted' },
          `id ${e.id.slice(0, 8)} · ${e.time.toISOString()}${e.correlationId ? ` · corr ${e.correlationId.slice(0, 8)}` : ''}`,
        ),
      ),
    );
    const slider = h('input', {
      type: 'range',
      min: '1',
      max: String(events.length),
      value: String(events.length),
      'aria-label': 'Time travel',
    });
    const travel = () => {
      const upTo = Number(slider.value);
      const folded = events.slice(0, upTo).reduce<Account>(accountFold.evolve, accountFold.initial);
      rows.forEach((r, i) => r.classList.toggle('future', i >= upTo));
      state.textContent = `At #${events[upTo - 1]!.sequence}: ${folded.owner || '—'} · balance ${money(folded.balance)} (version ${events[upTo - 1]!.sequence})`;
    };
    slider.addEventListener('input', travel);
    render(
      body,
      h('h3', {}, id),
      h('label', { class: 'travel' }, 'Time travel', slider),
      state,
      h('table', { class: 'history' }, h('tbody', {}, ...rows)),
    );
    travel();
  }

  return { element, show };
}
