import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as tcpConnect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { UnsupportedServerError } from '../../src/index.js';
import { startNatsServer } from '../../src/testing/index.js';
import { eventually } from '../support/monitor.js';

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'jetsource-launcher-'));
});
afterAll(() => rm(scratch, { recursive: true, force: true }));

/** A stand-in binary that only answers `--version`, as an old release would. */
async function fakeServer(version: string): Promise<string> {
  const bin = join(scratch, `nats-server-${version}`);
  await writeFile(bin, `#!/bin/sh\necho "nats-server: v${version}"\n`);
  await chmod(bin, 0o755);
  return bin;
}

/** Runs `start` with the system temp dir pointed at a fresh folder, and returns what it left there. */
async function leftInTmp(start: () => Promise<unknown>): Promise<{ error: unknown; left: string[] }> {
  const tmp = await mkdtemp(join(scratch, 'tmp-'));
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  try {
    const error = await start().then(
      () => undefined,
      (e: unknown) => e,
    );
    return { error, left: await readdir(tmp) };
  } finally {
    // Assigning undefined would set the string 'undefined'.
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
}

/** Writes config files (path → text) into a fresh folder, and returns the first one's path. */
async function configFiles(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(scratch, 'config-'));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  return join(dir, Object.keys(files)[0]!);
}

/** The JetStream settings a server started on `configFile` reports, and whether its store is the launcher's. */
async function jetstreamWith(
  configFile: string,
): Promise<{ sync_always?: boolean; max_memory: number; storeMoved: boolean }> {
  const server = await startNatsServer({ configFile });
  try {
    const varz = (await (await fetch(`${server.monitorUrl}/varz`)).json()) as {
      jetstream: { config: { sync_always?: boolean; max_memory: number; store_dir: string } };
    };
    const { store_dir, ...config } = varz.jetstream.config;
    return { ...config, storeMoved: store_dir.startsWith(server.storeDir) };
  } finally {
    await server.stop();
  }
}

describe('startNatsServer', () => {
  test('two servers at once get their own free ports and stores, and stop cleanly', async () => {
    const [a, b] = await Promise.all([startNatsServer(), startNatsServer()]);
    try {
      const ports = [a.port, a.wsPort, a.monitorUrl, b.port, b.wsPort, b.monitorUrl];
      expect(new Set(ports).size).toBe(6);
      expect(a.storeDir).not.toBe(b.storeDir);
      const nc = await tcpConnect({ servers: a.url });
      expect(nc.info?.jetstream).toBe(true);
      await nc.close();
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    await expect(stat(a.storeDir)).rejects.toThrow(/ENOENT/);
    await expect(tcpConnect({ servers: a.url, reconnect: false })).rejects.toThrow();
  });

  test.each(['stop', 'kill'] as const)(
    'a stop called while a %s runs returns once the process has exited',
    async (first) => {
      // Listens (as far as the launcher can tell) and takes a second to exit on SIGTERM.
      const bin = join(scratch, 'nats-server-slow-to-stop');
      await writeFile(
        bin,
        [
          '#!/bin/sh',
          'if [ "$1" = --version ]; then echo "nats-server: v2.15.1"; exit 0; fi',
          'for arg; do config=$arg; done',
          `echo '{"nats":["nats://127.0.0.1:1"],"websocket":["ws://127.0.0.1:2"]}' > "$(dirname "$config")/nats-server_$$.ports"`,
          "trap 'sleep 1; exit 0' TERM",
          'while :; do sleep 0.1; done',
        ].join('\n'),
      );
      await chmod(bin, 0o755);
      const server = await startNatsServer({ bin });
      const ports = (await readdir(dirname(server.storeDir))).find((f) => f.endsWith('.ports'))!;
      const pid = Number(/_(\d+)\.ports$/.exec(ports)![1]);
      const running = server[first]();
      await server.stop();
      expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
      await running;
    },
  );

  test('restart keeps the ports and the stored data', async () => {
    const server = await startNatsServer();
    try {
      const nc = await tcpConnect({ servers: server.url });
      await (await jetstreamManager(nc)).streams.add({ name: 'KEPT', subjects: ['kept.>'] });
      await nc.close();
      const port = server.port;
      await server.restart();
      expect(server.port).toBe(port);
      const again = await tcpConnect({ servers: server.url });
      expect((await (await jetstreamManager(again)).streams.info('KEPT')).config.name).toBe('KEPT');
      await again.close();
      // The restarted process's own output, for a failing test to show.
      expect(server.log).toMatch(/Restored 0 messages for stream '\$G > KEPT'/);
      expect(server.log).toMatch(/Server is ready/);
    } finally {
      await server.stop();
    }
  });

  test('pause leaves connections open and unanswered until resume; a paused server still stops', async () => {
    const server = await startNatsServer();
    try {
      const nc = await tcpConnect({ servers: server.url });
      server.pause();
      await expect(nc.request('$JS.API.INFO', '', { timeout: 300 })).rejects.toThrow(/timeout/i);
      const answered = nc.request('$JS.API.INFO', '', { timeout: 10_000 });
      server.resume();
      expect((await answered).json()).toMatchObject({
        type: 'io.nats.jetstream.api.v1.account_info_response',
      });
      expect(nc.isClosed()).toBe(false);
      server.pause();
      await nc.close();
    } finally {
      await server.stop();
    }
  });

  test("keeps a config file's JetStream settings, and moves only its store", async () => {
    const config = join(scratch, 'durable.conf');
    await writeFile(
      config,
      'jetstream {\n  store_dir: "/nonexistent/store"\n  sync_interval: always\n  max_memory_store: 64MB\n  limits { max_ack_pending: 77 }\n}\n',
    );
    expect(await jetstreamWith(config)).toMatchObject({
      sync_always: true,
      max_memory: 64 * 1024 * 1024,
      storeMoved: true,
    });
  });

  test('keeps JetStream settings from a file the config includes, and moves its store', async () => {
    const config = await configFiles({
      'main.conf': 'include sub/js.conf\n',
      'sub/js.conf':
        'jetstream { store_dir: "/nonexistent/store", max_memory_store: 123MB, sync_interval: always }\n',
    });
    expect(await jetstreamWith(config)).toMatchObject({
      sync_always: true,
      max_memory: 123 * 1024 * 1024,
      storeMoved: true,
    });
  });

  test("reads an include inside the config's JetStream block from beside the config", async () => {
    const config = await configFiles({
      'main.conf': 'jetstream {\n  include "limits/js.conf"\n}\n',
      'limits/js.conf': 'store_dir: /nonexistent/store\nmax_mem: 77MB\n',
    });
    expect(await jetstreamWith(config)).toMatchObject({
      max_memory: 77 * 1024 * 1024,
      storeMoved: true,
    });
  });

  test('refuses a config that includes itself, and leaves no files behind', async () => {
    const configFile = await configFiles({ 'a.conf': 'include b.conf\n', 'b.conf': 'include "a.conf"\n' });
    const { error, left } = await leftInTmp(() => startNatsServer({ configFile }));
    expect((error as Error).message).toMatch(/a\.conf includes itself: .*a\.conf → .*b\.conf → .*a\.conf/);
    expect(left).toEqual([]);
  });

  test("moves a store dir set at a config file's top level too", async () => {
    const config = join(scratch, 'top-level-store.conf');
    const theirs = join(scratch, 'their-store');
    await writeFile(config, `store_dir: ${JSON.stringify(theirs)}\njetstream: enabled\n`);
    expect(await jetstreamWith(config)).toMatchObject({ storeMoved: true });
    await expect(stat(theirs)).rejects.toThrow(/ENOENT/);
  });

  test('includes a config file: its accounts apply, its listeners do not', async () => {
    const config = join(scratch, 'users.conf');
    await writeFile(config, 'listen: "127.0.0.1:1"\nauthorization { user: admin, password: s3cret }\n');
    const server = await startNatsServer({ configFile: config });
    try {
      expect(server.port).not.toBe(1);
      await expect(tcpConnect({ servers: server.url, reconnect: false })).rejects.toThrow(/auth/i);
      const nc = await tcpConnect({ servers: server.url, user: 'admin', pass: 's3cret' });
      await nc.close();
    } finally {
      await server.stop();
    }
  });

  test('a server that fails to start reports its own log and leaves no files behind', async () => {
    const { error, left } = await leftInTmp(() => startNatsServer({ extraConfig: 'no_such_block { ' }));
    expect((error as Error).message).toMatch(
      /nats-server exited with 1:\s+nats-server: Parse error on line \d+/,
    );
    expect(left).toEqual([]);
  });

  test('a server that never listens is stopped at the deadline, and its files removed', async () => {
    const pidFile = join(scratch, 'stuck.pid');
    const bin = join(scratch, 'nats-server-stuck');
    await writeFile(
      bin,
      `#!/bin/sh\nif [ "$1" = --version ]; then echo "nats-server: v2.15.1"; exit 0; fi\necho $$ > ${pidFile}\nexec sleep 60\n`,
    );
    await chmod(bin, 0o755);
    const { error, left } = await leftInTmp(() => startNatsServer({ bin, readyTimeoutMs: 500 }));
    expect((error as Error).message).toMatch(/did not start listening within 500 ms/);
    expect(left).toEqual([]);
    const pid = Number(await readFile(pidFile, 'utf8'));
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
  });

  test('a server killed by a signal while starting fails the start at once', async () => {
    const bin = join(scratch, 'nats-server-killed');
    await writeFile(
      bin,
      `#!/bin/sh\nif [ "$1" = --version ]; then echo "nats-server: v2.15.1"; exit 0; fi\nkill -KILL $$\n`,
    );
    await chmod(bin, 0o755);
    const { error, left } = await leftInTmp(() => startNatsServer({ bin, readyTimeoutMs: 30_000 }));
    expect((error as Error).message).toMatch(/nats-server exited with SIGKILL/);
    expect(left).toEqual([]);
  });

  test('refuses a binary too old for jetsource, naming its version', async () => {
    const err = await startNatsServer({ bin: await fakeServer('2.10.26') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedServerError);
    expect((err as UnsupportedServerError).version).toBe('2.10.26');
    expect((err as Error).message).toMatch(/needs 2\.14\.4 or newer/);
  });

  test('gives up on a binary that does not answer --version, within readyTimeoutMs', async () => {
    const bin = join(scratch, 'nats-server-mute');
    await writeFile(bin, '#!/bin/sh\nexec sleep 60\n');
    await chmod(bin, 0o755);
    const err = await startNatsServer({ bin, readyTimeoutMs: 500 }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/nats-server-mute --version did not answer within 500 ms/);
  }, 5_000);

  test('refuses a binary that names no nats-server version', async () => {
    const { error, left } = await leftInTmp(() => startNatsServer({ bin: '/bin/true' }));
    expect((error as Error).message).toMatch(
      /^\/bin\/true printed no nats-server version for --version \(".*"\): .*set NATS_SERVER_BIN/,
    );
    expect(left).toEqual([]);
  });

  test('says how to get a server when the binary is missing', async () => {
    const err = await startNatsServer({ bin: join(scratch, 'no-such-server') }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/cannot run .*no-such-server.*set NATS_SERVER_BIN/);
  });
});

describe('a Node process that ends while its servers run', () => {
  /** A Node process that starts a server and then runs `then`; resolves once the server is up. */
  async function serverHeldBy(
    then: string,
    before = '',
  ): Promise<{ node: ChildProcess; workDir: string; url: string; output: () => string }> {
    const launcher = fileURLToPath(new URL('../../src/testing/index.ts', import.meta.url));
    const script = join(await mkdtemp(join(scratch, 'node-')), 'hold.mts');
    await writeFile(
      script,
      [
        `import { dirname } from 'node:path';`,
        `import { startNatsServer } from ${JSON.stringify(launcher)};`,
        before,
        `const server = await startNatsServer();`,
        `console.log(JSON.stringify({ workDir: dirname(server.storeDir), url: server.url }));`,
        then,
      ].join('\n'),
    );
    const node = spawn(process.execPath, ['--import', 'tsx', script], {
      env: { ...process.env, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    node.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    node.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = once(node, 'exit').then(() => true);
    while (!stdout.includes('\n'))
      if (await Promise.race([once(node.stdout!, 'data').then(() => false), exited]))
        throw new Error(`the Node process started no server:\n${stderr}`);
    const first = stdout.slice(0, stdout.indexOf('\n'));
    return { node, ...(JSON.parse(first) as { workDir: string; url: string }), output: () => stdout };
  }

  /** Whether the server and its files are gone (its process may be a zombie a while: its port is not). */
  const gone = async ({ workDir, url }: { workDir: string; url: string }) => {
    const listening = () =>
      tcpConnect({ servers: url, reconnect: false }).then(
        (nc) => nc.close().then(() => true),
        () => false,
      );
    const stillListening = await eventually(listening, (up) => !up);
    const files = await stat(workDir).then(
      () => true,
      () => false,
    );
    return !stillListening && !files;
  };

  test.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)(
    'killed by %s, it stops its servers, removes their files, and dies of the signal',
    async (signal) => {
      const held = await serverHeldBy('setInterval(() => undefined, 1000);');
      held.node.kill(signal);
      const [code, by] = (await once(held.node, 'exit')) as [number | null, NodeJS.Signals | null];
      expect({ code, by }).toEqual({ code: null, by: signal });
      expect(await gone(held)).toBe(true);
    },
  );

  // The listener still reaches the server, then exits; `once` before the launcher's own
  // listener exists is the case Node hides from a listener count.
  const shutdown = [
    `(() => {`,
    `  const { hostname, port } = new URL(server.url);`,
    `  const socket = connect(Number(port), hostname);`,
    `  socket.once('data', (d) => {`,
    `    console.log(String(d).startsWith('INFO') ? 'reached' : 'other');`,
    `    process.exit(0);`,
    `  });`,
    `  socket.once('error', () => process.exit(1));`,
    `})`,
  ].join('\n');
  test.each([
    ['on, after the server started', '', `process.on('SIGTERM', ${shutdown});`],
    ['once, before the server started', `process.once('SIGTERM', ${shutdown});`, ''],
  ])(
    "a signal it listens to itself (%s) leaves the servers to its listener's shutdown, and they end when it exits",
    async (_, before, after) => {
      const held = await serverHeldBy(
        [`import { connect } from 'node:net';`, after, `setInterval(() => undefined, 1000);`].join('\n'),
        before,
      );
      held.node.kill('SIGTERM');
      const [code] = (await once(held.node, 'exit')) as [number | null];
      expect(code).toBe(0);
      expect(held.output()).toContain('reached');
      expect(await gone(held)).toBe(true);
    },
  );

  test('process.exit() stops its servers and removes their files', async () => {
    const held = await serverHeldBy('process.exit(0);');
    const [code] = (await once(held.node, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(await gone(held)).toBe(true);
  });
});
