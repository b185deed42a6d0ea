import { isJetsourceError } from 'jetsource';
import { parseAmount, RuleViolation } from '../domain.js';
import type { Decision, Outcome, Session } from '../session.js';
import { h, render } from './dom.js';

/** Commands. Withdrawals and transfers are reviewed first, which is where conflicts happen. */
export function actionsPanel(session: Session): HTMLElement {
  const message = h('div', { class: 'message', dataset: { testid: 'message' }, role: 'status' });
  const show = (kind: 'ok' | 'error' | 'warn', ...lines: string[]) =>
    render(message, ...lines.map((l) => h('p', { class: kind }, l)));

  const report = async (work: () => Promise<Outcome>, done: string) => {
    try {
      const outcome = await work();
      const retried = outcome.conflicts.length
        ? [`Conflict handled: ${outcome.conflicts.join(' ')} Decided again on fresh state.`]
        : [];
      show(
        outcome.conflicts.length ? 'warn' : 'ok',
        ...retried,
        `${done} (event #${outcome.sequences.join(', #')}).`,
      );
    } catch (err) {
      show('error', explain(err));
    }
  };

  const field = (name: string, placeholder: string, type = 'text') =>
    h('input', {
      name,
      placeholder,
      type,
      required: true,
      ...(type === 'number' ? { min: '0.01', step: '0.01' } : {}),
    });

  const openId = field('id', 'account id, e.g. alice');
  const openOwner = field('owner', 'owner name');
  const open = form('open', 'Open account', [openId, openOwner], () =>
    report(() => session.openAccount(openId.value.trim(), openOwner.value), `Opened ${openId.value}`),
  );

  const depositId = field('id', 'account');
  const depositAmount = field('amount', 'amount', 'number');
  const deposit = form('deposit', 'Deposit', [depositId, depositAmount], () =>
    report(
      async () => session.deposit(depositId.value.trim(), parseAmount(depositAmount.value)),
      `Deposited to ${depositId.value}`,
    ),
  );

  const review = h('div', { class: 'review', dataset: { testid: 'review' } });
  const reviewFirst = async (decide: () => Promise<Decision>, done: string) => {
    try {
      const decision = await decide();
      render(message); // an earlier outcome no longer applies to what is under review
      render(
        review,
        h('p', {}, decision.summary),
        h(
          'div',
          { class: 'row' },
          h(
            'button',
            {
              class: 'primary',
              dataset: { testid: 'confirm' },
              onclick: () => {
                render(review);
                void report(() => session.run(decide, decision), done);
              },
            },
            'Confirm',
          ),
          h('button', { class: 'ghost', onclick: () => render(review) }, 'Cancel'),
        ),
      );
    } catch (err) {
      show('error', explain(err));
    }
  };

  const withdrawId = field('id', 'account');
  const withdrawAmount = field('amount', 'amount', 'number');
  // Fields are read once: a conflict decides again on the values reviewed, not on later edits.
  const withdraw = form('withdraw', 'Withdraw…', [withdrawId, withdrawAmount], () => {
    const [id, amount] = [withdrawId.value.trim(), withdrawAmount.value];
    return reviewFirst(async () => session.decideWithdraw(id, parseAmount(amount)), `Withdrew from ${id}`);
  });

  const fromId = field('from', 'from');
  const toId = field('to', 'to');
  const transferAmount = field('amount', 'amount', 'number');
  const transfer = form('transfer', 'Transfer…', [fromId, toId, transferAmount], () => {
    const [from, to, amount] = [fromId.value.trim(), toId.value.trim(), transferAmount.value];
    return reviewFirst(
      async () => session.decideTransfer(from, to, parseAmount(amount)),
      `Transferred ${from} → ${to}`,
    );
  });

  return h(
    'section',
    { class: 'card', dataset: { testid: 'actions' } },
    h('div', { class: 'card-title' }, h('h2', {}, 'Commands')),
    open,
    deposit,
    withdraw,
    transfer,
    review,
    message,
  );
}

function form(
  name: string,
  label: string,
  inputs: HTMLInputElement[],
  submit: () => unknown,
): HTMLFormElement {
  return h(
    'form',
    {
      class: 'action',
      dataset: { action: name },
      onsubmit: (e: Event) => {
        e.preventDefault();
        void submit();
      },
    },
    ...inputs,
    h('button', { type: 'submit' }, label),
  );
}

/** Every failure gets a sentence a person can act on. */
function explain(err: unknown): string {
  if (err instanceof RuleViolation) return err.message;
  if (isJetsourceError(err, 'PERMISSION_DENIED'))
    return `Read-only: your role cannot write. (${(err as Error).message})`;
  if (isJetsourceError(err, 'CONCURRENCY'))
    return `Still conflicting after several tries: ${(err as Error).message}`;
  if (isJetsourceError(err)) return (err as Error).message;
  return `Unexpected error: ${(err as Error).message ?? err}`;
}
