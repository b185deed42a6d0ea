import { accountFold, account, money, type Account, type BankEvent } from '../domain.js';
import type { Session } from '../session.js';
import { Subscription } from 'rxjs';
import { h, render } from './dom.js';

/** A row of the history: an event, or one the schemas refused, in place. */
type Row = { sequence: number; event: BankEvent } | { sequence: number; event: undefined; reason: string };

/**
 * One entity's history with sequences and headers, and time travel by sequence. It is a
 * live watch of the entity: new events appear as they are stored, and the slider follows
 * them unless it was moved back.
 */
export function inspectorPanel(session: Session): {
  element: HTMLElement;
  show(id: string): void;
  subscription: Subscription;
} {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Click an account or an event to see its history.'));
  const element = h(
    'section',
    { class: 'card', dataset: { testid: 'inspector' } },
    h('div', { class: 'card-title' }, h('h2', {}, 'Inspector')),
    body,
  );
  // The watch of the account shown; replaced on each click, ended on sign-out.
  const subscription = new Subscription();
  let current: Subscription | undefined;

  function show(id: string): void {
    current?.unsubscribe();
    const history: Row[] = [];
    let live = false;
    let slider: HTMLInputElement | undefined;
    // Unreadable events are listed in place, as the feed shows them, not a reason to show nothing.
    current = session.store.watch(account(id), { onMalformed: 'report' }).subscribe({
      next: (m) => {
        if (m.kind === 'event') history.push({ sequence: m.event.sequence, event: m.event });
        else if (m.kind === 'malformed')
          history.push({
            sequence: m.malformed.sequence,
            event: undefined,
            reason: m.malformed.error.message,
          });
        else live = true;
        // Drawn once caught up, then on every live event.
        if (!live) return;
        const following = !slider || slider.value === slider.max;
        slider = draw(id, history, following ? undefined : Number(slider!.value));
      },
      // A lost connection the watch could not ride out: say so rather than keep a stale history.
      error: (err: Error) => render(body, h('p', { class: 'error' }, `Cannot show ${id}: ${err.message}`)),
    });
    subscription.add(current);
  }

  /** Renders the history with the slider at `at` (default: the newest event); returns the slider. */
  function draw(id: string, history: Row[], at?: number): HTMLInputElement | undefined {
    if (history.length === 0) {
      render(body, h('p', { class: 'muted' }, `${id} has no events.`));
      return undefined;
    }
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
            h('td', { class: 'mono small', colspan: '2' }, row.reason),
          ),
    );
    const slider = h('input', {
      type: 'range',
      min: '1',
      max: String(history.length),
      value: String(at ?? history.length),
      'aria-label': 'Time travel',
    });
    const travel = () => {
      const upTo = Number(slider.value);
      const folded = history
        .slice(0, upTo)
        .flatMap((row) => (row.event ? [row.event] : []))
        .reduce<Account>(accountFold.evolve, accountFold.initial);
      rows.forEach((r, i) => r.classList.toggle('future', i >= upTo));
      const seq = history[upTo - 1]!.sequence;
      state.textContent = `At #${seq}: ${folded.owner || '—'} · balance ${money(folded.balance)} (version ${seq})`;
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
    return slider;
  }

  return { element, show, subscription };
}
