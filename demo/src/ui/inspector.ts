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

  /** Bumped per click: a slow read for an earlier click must not overwrite a later one. */
  let shown = 0;

  async function show(id: string): Promise<void> {
    const ticket = ++shown;
    const events: BankEvent[] = [];
    // Unreadable events are listed in place, as the feed shows them, not a reason to show nothing.
    const reader = session.store.read(account(id), { onMalformed: 'report' });
    try {
      for await (const e of reader) events.push(e);
    } catch (err) {
      // A lost connection: say so rather than keep a stale history.
      if (ticket === shown)
        render(body, h('p', { class: 'error' }, `Cannot show ${id}: ${(err as Error).message}`));
      return;
    }
    if (ticket !== shown) return;
    const history = [
      ...events.map((e) => ({ sequence: e.sequence, event: e })),
      ...reader.malformed.map((m) => ({ sequence: m.sequence, event: undefined, reason: m.error.message })),
    ].sort((a, b) => a.sequence - b.sequence);
    if (history.length === 0) return render(body, h('p', { class: 'muted' }, `${id} has no events.`));
    const state = h('p', { class: 'state' });
    const rows = history.map((row) =>
      row.event
        ? h(
            'tr',
            {},
            h('td', { class: 'seq' }, `#${row.sequence}`),
            h('td', {}, row.event.type),
            h('td', { class: 'mono small' }, JSON.stringify(row.event.data)),
            h(
              'td',
              { class: 'mono small muted' },
              `id ${row.event.id.slice(0, 8)} · ${row.event.time.toISOString()}${row.event.correlationId ? ` · corr ${row.event.correlationId.slice(0, 8)}` : ''}`,
            ),
          )
        : h(
            'tr',
            { class: 'unreadable' },
            h('td', { class: 'seq' }, `#${row.sequence}`),
            h('td', {}, 'Unreadable'),
            h('td', { class: 'mono small', colspan: '2' }, 'reason' in row ? row.reason : ''),
          ),
    );
    const slider = h('input', {
      type: 'range',
      min: '1',
      max: String(history.length),
      value: String(history.length),
      'aria-label': 'Time travel',
    });
    const travel = () => {
      const upTo = Number(slider.value);
      const folded = history
        .slice(0, upTo)
        .flatMap((row) => (row.event ? [row.event] : []))
        .reduce<Account>(accountFold.evolve, accountFold.initial);
      rows.forEach((r, i) => r.classList.toggle('future', i >= upTo));
      const at = history[upTo - 1]!.sequence;
      state.textContent = `At #${at}: ${folded.owner || '—'} · balance ${money(folded.balance)} (version ${at})`;
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
