import { h, render } from './ui/dom.js';
import { mountApp } from './app.js';
import { demoStore, Session, type Role } from './session.js';

const root = document.getElementById('app')!;

function signIn(error?: string): void {
  const tenant = h(
    'select',
    { name: 'tenant', 'aria-label': 'Tenant' },
    ...demoStore.tenants.map((name) => h('option', { value: name }, name)),
  );
  const role = h(
    'select',
    { name: 'role', 'aria-label': 'Role' },
    h('option', { value: 'writer' }, 'writer — append and read'),
    h('option', { value: 'reader' }, 'reader — read only'),
  );
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    {
      class: 'card signin',
      onsubmit: async (e: Event) => {
        e.preventDefault();
        button.disabled = true;
        button.textContent = 'Connecting…';
        try {
          const session = await Session.open(tenant.value, role.value as Role);
          mountApp(root, session, () => signIn());
        } catch (err) {
          signIn(`Could not connect: ${(err as Error).message}`);
        }
      },
    },
    h('h1', {}, 'jetsource ledger'),
    h(
      'p',
      { class: 'muted' },
      'A multi-tenant ledger on NATS JetStream. Your browser talks to nats-server directly over WebSocket, with the bundled development credentials.',
    ),
    h('label', {}, 'Tenant', tenant),
    h('label', {}, 'Role', role),
    error ? h('p', { class: 'error', role: 'alert' }, error) : null,
    button,
  );
  render(root, h('main', { class: 'center' }, form));
}

signIn();
