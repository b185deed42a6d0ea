import type { Subscription } from 'rxjs';
import type { MalformedEvent, WatchMessage } from 'jetsource';
import { money, type BankEvent, type BankEvents } from '../domain.js';
import type { Session } from '../session.js';
import { h, render } from './dom.js';

const SHOWN = 40;

/** The live activity feed: catch-up with a progress bar, the caught-up moment, then live events. */
export function feedPanel(
  session: Session,
  inspect: (id: string) => void,
): { element: HTMLElement; subscription: Subscription } {
  const bar = h('div', { class: 'bar-fill' });
  const progressText = h(
    'span',
    { class: 'muted small', dataset: { testid: 'feed-progress' } },
    'Connecting…',
  );
  const list = h('ol', { class: 'feed', dataset: { testid: 'feed' } });
  const recent: Array<BankEvent | MalformedEvent> = [];
  const started = performance.now();
  let caughtUp = false;

  const address = (subject: string): [string, string] => {
    try {
      const { entity, eventType } = session.store.format.scheme.parse(subject);
      return [entity.id, eventType];
    } catch {
      return ['', subject]; // not even the subject reads: show it as stored
    }
  };
  const draw = () =>
    render(list, ...recent.map((e) => ('raw' in e ? unreadable(e, address(e.subject)) : item(e, inspect))));
  const onMessage = (m: WatchMessage<BankEvents>) => {
    if (m.kind === 'caught-up') {
      caughtUp = true;
      bar.style.width = '100%';
      const ms = Math.round(performance.now() - started);
      progressText.textContent = `Live · caught up on ${m.progress.delivered} events at #${m.sequence} in ${ms} ms`;
      progressText.dataset.caughtUp = String(ms);
      draw();
      return;
    }
    const entry = m.kind === 'event' ? m.event : m.malformed;
    // For tests and the curious: how many events this page received, and the newest.
    list.dataset.received = String(m.progress.delivered);
    list.dataset.last = String(entry.sequence);
    recent.unshift(entry);
    if (recent.length > SHOWN) recent.pop();
    if (caughtUp) return draw();
    // During catch-up only the bar moves: redrawing 10 000 times would stall the page.
    const { delivered, pending } = m.progress;
    if (delivered % 250 === 0 || pending === 0) {
      bar.style.width = `${(100 * delivered) / (delivered + pending)}%`;
      progressText.textContent = `Catching up… ${delivered} of ${delivered + pending}`;
    }
  };
  const subscription = session.feed.subscribe({
    next: onMessage,
    error: (err) => (progressText.textContent = `Feed stopped: ${(err as Error).message}`),
  });
  const element = h(
    'section',
    { class: 'card' },
    h('div', { class: 'card-title' }, h('h2', {}, 'Activity'), progressText),
    h('div', { class: 'bar' }, bar),
    list,
  );
  return { element, subscription };
}

function item(e: BankEvent, inspect: (id: string) => void): HTMLElement {
  return h(
    'li',
    { dataset: { sequence: String(e.sequence), account: e.entity.id }, onclick: () => inspect(e.entity.id) },
    h('span', { class: 'seq' }, `#${e.sequence}`),
    h('span', { class: `type ${e.type}` }, e.type),
    h('span', { class: 'account-id' }, e.entity.id),
    h('span', { class: 'detail' }, describe(e)),
    h('time', { class: 'muted small', dateTime: e.time.toISOString() }, e.time.toLocaleTimeString()),
  );
}

/** A stored event the schemas refuse: shown with the reason, never folded. */
function unreadable(m: MalformedEvent, [account, type]: [string, string]): HTMLElement {
  return h(
    'li',
    { class: 'malformed', title: m.error.message, dataset: { sequence: String(m.sequence) } },
    h('span', { class: 'seq' }, `#${m.sequence}`),
    h('span', { class: 'type' }, 'Unreadable'),
    h('span', { class: 'account-id' }, account),
    h('span', { class: 'detail' }, `${type} failed ${m.error.reason}: ${m.error.detail}`),
  );
}

function describe(e: BankEvent): string {
  switch (e.type) {
    case 'AccountOpened':
      return `for ${e.data.owner}`;
    case 'TransferredOut':
      return `${money(e.data.cents)} → ${e.data.to}`;
    case 'TransferredIn':
      return `${money(e.data.cents)} ← ${e.data.from}`;
    case 'Deposited':
    case 'Withdrawn':
      return money(e.data.cents);
    default:
      return JSON.stringify((e as { data: unknown }).data);
  }
}
