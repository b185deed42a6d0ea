import { createServer } from 'node:net';
import { startNatsServer, type NatsServer } from '../../src/testing/index.js';
import { eventually } from './monitor.js';

/** A JetStream cluster of nats-servers on this machine, each with its own temporary store. */
export interface TestCluster {
  readonly servers: ReadonlyArray<NatsServer>;
  stop(): Promise<void>;
}

/**
 * Starts `size` clustered nats-servers and waits until JetStream has elected a meta leader
 * all of them know. A JetStream cluster refuses to start without its routes, so each
 * server's cluster port is taken from the OS before any starts. It is free at that
 * moment; another process can take it in between (an outgoing connection's port, say),
 * and the cluster is then started again on fresh ports.
 */
export async function startCluster(size = 3): Promise<TestCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClusterOnce(size);
    } catch (err) {
      if (attempt >= 3 || !String((err as Error).message).includes('address already in use')) throw err;
    }
  }
}

async function startClusterOnce(size: number): Promise<TestCluster> {
  const ports = await Promise.all(Array.from({ length: size }, freePort));
  const config = (i: number) => {
    const routes = ports.filter((_, j) => j !== i).map((p) => `"nats-route://127.0.0.1:${p}"`);
    return `server_name: n${i}\ncluster { name: jetsource, listen: "127.0.0.1:${ports[i]}", routes: [${routes.join(', ')}] }`;
  };
  const started = await Promise.allSettled(ports.map((_, i) => startNatsServer({ extraConfig: config(i) })));
  const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stop = async () => void (await Promise.all(servers.map((s) => s.stop())));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  const elected = (metas: Array<{ leader?: string; cluster_size?: number }>) =>
    metas.every((m) => m.leader !== undefined && m.cluster_size === size);
  try {
    const ready = await eventually(() => Promise.all(servers.map(metaCluster)), elected, 20_000);
    if (!elected(ready))
      throw new Error(`the JetStream cluster elected no meta leader: ${JSON.stringify(ready)}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { servers, stop };
}

async function metaCluster(server: NatsServer): Promise<{ leader?: string; cluster_size?: number }> {
  const jsz = (await (await fetch(`${server.monitorUrl}/jsz`)).json()) as {
    meta_cluster?: { leader?: string; cluster_size?: number };
  };
  return jsz.meta_cluster ?? {};
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
