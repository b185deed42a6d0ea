import type { NatsConnection, Status } from '@nats-io/nats-core';
import { UnavailableError } from '../errors.js';
import { assertConnection } from '../options.js';

/** Statuses that change whether a connection is up. */
export type LinkStatus = Extract<Status['type'], 'disconnect' | 'reconnecting' | 'reconnect'>;

/**
 * What a status says of the link. A stale connection (no pongs) or a forced reconnect is
 * down at once, though nats.js reports the disconnect only once the socket has closed,
 * which takes a WebSocket up to 30 s with a peer that does not answer.
 */
export function linkChange(type: Status['type']): LinkStatus | undefined {
  switch (type) {
    case 'disconnect':
    case 'staleConnection':
    case 'forceReconnect':
      return 'disconnect';
    case 'reconnecting':
    case 'reconnect':
      return type;
    default:
      return undefined;
  }
}

/** What {@link unlessDropped} returns when the connection dropped before the request ended. */
export const DROPPED: unique symbol = Symbol('dropped');

/**
 * Whether a connection is up, followed through its status events. nats.js cannot say
 * right now, nor end a request whose answer a drop lost, and what is sent while it
 * reconnects is lost too: it empties its outgoing buffer at every connect attempt.
 */
class Link {
  /** The latest link change; undefined until one is seen. */
  latest: LinkStatus | undefined;
  /** Closed: nothing comes back, and a request fails at once with the closed connection's error. */
  private closed = false;
  /** What requests in flight resolve with at a drop: DROPPED. */
  readonly inFlight = new Set<(dropped: typeof DROPPED) => void>();
  private readonly upListeners = new Set<() => void>();

  constructor(private readonly nc: NatsConnection) {
    void (async () => {
      for await (const s of nc.status()) {
        const change = linkChange(s.type);
        if (change === undefined) continue;
        this.latest = change;
        if (change === 'reconnect') for (const listener of [...this.upListeners]) listener();
        else {
          for (const drop of this.inFlight) drop(DROPPED);
          this.inFlight.clear();
        }
      }
      this.closed = true;
      for (const listener of [...this.upListeners]) listener();
    })();
  }

  /** Whether a request sent now can be answered, or fails at once for a closed connection. */
  get usable(): boolean {
    return this.closed || this.nc.isClosed() || this.latest === undefined || this.latest === 'reconnect';
  }

  /**
   * Resolves true once the connection is {@link usable} (at once if it is), false if it is
   * not within `timeoutMs`.
   */
  whenUp(timeoutMs: number): Promise<boolean> {
    if (this.usable) return Promise.resolve(true);
    return new Promise((resolve) => {
      const up = (isUp: boolean) => {
        clearTimeout(timer);
        this.upListeners.delete(onUp);
        resolve(isUp);
      };
      const onUp = () => up(true);
      const timer = setTimeout(() => up(false), timeoutMs);
      this.upListeners.add(onUp);
    });
  }
}

const links = new WeakMap<NatsConnection, Link>();

/**
 * Follows a connection's link from now on (at once for connections made by jetsource's
 * `connect`; for one handed in, from when a store, view or dead-letter set is opened on it).
 */
export function linkOf(nc: NatsConnection): Link {
  let link = links.get(nc);
  if (!link) links.set(nc, (link = new Link(nc)));
  return link;
}

/**
 * What a store, view or dead-letter set does when it is opened on a connection: refuses
 * what is not one (see assertConnection), and follows its link from now, so a connection
 * handed in (not from `connect`) that drops before the first request is seen to drop.
 */
export function followConnection(value: unknown, name?: string): void {
  assertConnection(value, name);
  linkOf(value as NatsConnection);
}

/** The latest link change of a connection followed since it was made; undefined if none yet. */
export const lastLinkStatus = (nc: NatsConnection): LinkStatus | undefined => links.get(nc)?.latest;

/** What to do about a connection that is down, or keeps dropping. */
const linkRemedy =
  'Retry once the connection is back (watch connectionState), or check the server and network.';

/** The connection has been down for as long as a request may take. */
export function linkDown(timeoutMs: number, nothingSent = ''): UnavailableError {
  return new UnavailableError(`the connection has been down for ${timeoutMs} ms${nothingSent}`, {
    remedy: linkRemedy,
  });
}

/**
 * Runs a request, or gives up on it when the connection drops first: its answer is then
 * lost (core NATS does not deliver to a dropped connection), and waiting out its timeout
 * would only delay a failure. The abandoned request ends on its own timer, unread.
 */
export function unlessDropped<T>(nc: NatsConnection, send: () => Promise<T>): Promise<T | typeof DROPPED> {
  const link = linkOf(nc);
  return new Promise((resolve, reject) => {
    // A drop resolves it with DROPPED; settling after that changes nothing.
    link.inFlight.add(resolve);
    send().then(
      (answer) => {
        link.inFlight.delete(resolve);
        resolve(answer);
      },
      (err: unknown) => {
        link.inFlight.delete(resolve);
        reject(err);
      },
    );
  });
}

/** How many drops an idempotent request is sent again after, before it fails. */
const DROPS_RIDDEN = 3;

/**
 * Runs an idempotent request once the connection is up (waiting up to `timeoutMs`), and
 * again after the reconnect when the connection drops before it ends: a read across a
 * reconnect is answered once the connection is back, rather than failing at its timeout.
 */
export async function acrossDrops<T>(
  nc: NatsConnection,
  send: () => Promise<T>,
  timeoutMs: number,
): Promise<T> {
  const link = linkOf(nc);
  for (let drops = 0; ; drops++) {
    if (!link.usable && !(await link.whenUp(timeoutMs))) throw linkDown(timeoutMs);
    const outcome = await unlessDropped(nc, send);
    if (outcome !== DROPPED) return outcome;
    if (drops === DROPS_RIDDEN)
      throw new UnavailableError(`the connection dropped ${drops + 1} times before a request was answered`, {
        remedy: linkRemedy,
      });
  }
}

/**
 * Sends a request that must not be repeated blindly (a compare-and-set) once the
 * connection is up (waiting up to `timeoutMs`), and fails at once when the connection
 * drops before its answer: what `what` did is then unknown, and the caller looks again.
 */
export async function sentOnceUp<T>(
  nc: NatsConnection,
  send: () => Promise<T>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  if (!(await linkOf(nc).whenUp(timeoutMs))) throw linkDown(timeoutMs, `; ${what} was not sent`);
  const outcome = await unlessDropped(nc, send);
  if (outcome === DROPPED)
    throw new UnavailableError(`the connection dropped before ${what} was answered: it may have been done`);
  return outcome;
}
