import type { NatsConnection } from '@nats-io/nats-core';
import { UnsupportedServerError } from '../errors.js';

/**
 * Whether a nats-server release keeps jetsource's atomic appends. Atomic batches arrived
 * in 2.12, and until 2.12.14 / 2.14.4 they refused the per-entity expectation jetsource
 * puts in them. Older servers are worse than refusing: they store a batch's messages one
 * by one, so a conflict half-way leaves half an append behind.
 */
export function supportsAtomicAppends(version: string): boolean {
  const [major = 0, minor = 0, patch = 0] = version.split(/[.-]/, 3).map(Number);
  if (major !== 2) return major > 2;
  return minor > 14 || (minor === 14 && patch >= 4) || (minor === 12 && patch >= 14);
}

let approved: string | undefined;

/**
 * Throws {@link UnsupportedServerError} when the server this connection is on cannot keep
 * jetsource's guarantees. Cheap enough for every append: a reconnect may land elsewhere.
 */
export function assertSupportedServer(nc: NatsConnection): void {
  const version = nc.info?.version;
  if (version === undefined || version === approved) return;
  if (!supportsAtomicAppends(version)) throw new UnsupportedServerError(version);
  approved = version;
}
