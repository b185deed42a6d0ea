import type { NatsServer } from '../../src/testing/index.js';

/** Server-side counts a test can compare against a baseline to prove nothing leaked. */
export async function serverCounts(
  server: NatsServer,
): Promise<{ consumers: number; subscriptions: number }> {
  const jsz = (await (await fetch(`${server.monitorUrl}/jsz`)).json()) as { consumers: number };
  const subsz = (await (await fetch(`${server.monitorUrl}/subsz`)).json()) as { num_subscriptions: number };
  return { consumers: jsz.consumers, subscriptions: subsz.num_subscriptions };
}

/** Polls until `check` passes or the deadline expires, then returns its last value. */
export async function eventually<T>(
  probe: () => Promise<T>,
  check: (v: T) => boolean,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await probe();
  while (!check(value) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    value = await probe();
  }
  return value;
}
