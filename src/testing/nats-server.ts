import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { supportsAtomicAppends } from '../connection/server-version.js';
import { UnsupportedServerError } from '../errors.js';

/** Options for {@link startNatsServer}. */
export interface NatsServerOptions {
  /** nats-server binary. Default: `$NATS_SERVER_BIN`, else `nats-server` on `PATH`. */
  bin?: string;
  /** A config file to start from (accounts, users, limits), with the files it includes. Listeners and the store dir are overridden; its other settings, JetStream's too, are kept. */
  configFile?: string;
  /** JetStream store directory. Default: a fresh temporary directory, removed on {@link NatsServer.stop}. */
  storeDir?: string;
  /** TCP client port. Default: a free port chosen by the server. */
  port?: number;
  /** WebSocket port. Default: a free port chosen by the server. */
  wsPort?: number;
  /** Extra config text appended after everything else. */
  extraConfig?: string;
  /** How long to wait for the binary to answer `--version`, and then for the server to listen, in ms. Default 10 000 each. */
  readyTimeoutMs?: number;
}

/** A running nats-server started by {@link startNatsServer}. */
export interface NatsServer {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  /** `ws://127.0.0.1:<port>` */
  readonly wsUrl: string;
  readonly port: number;
  readonly wsPort: number;
  /** The running process's latest output (up to 64 KB), e.g. to show its warnings when a test fails. */
  readonly log: string;
  /** `http://127.0.0.1:<port>` — the monitoring endpoint (`/connz`, `/jsz`, `/subsz`). */
  readonly monitorUrl: string;
  readonly storeDir: string;
  /** Stops the process; the store directory is kept so {@link NatsServer.restart} can reuse it. */
  kill(): Promise<void>;
  /** Starts the server again on the same ports and store directory. */
  restart(): Promise<void>;
  /**
   * Freezes the process (SIGSTOP; POSIX only) with its connections open, as a hung or
   * overloaded server would be: requests reach it and get no answer until {@link resume}.
   */
  pause(): void;
  /** Lets a paused server go on (SIGCONT): it then handles what it was sent meanwhile. */
  resume(): void;
  /** Stops the server and removes a temporary store directory. */
  stop(): Promise<void>;
}

const LOG_TAIL = 64 * 1024;

// Servers not stopped when this process ends (process.exit(), a crash, a test run killed
// with `kill`) end with it rather than hold their ports and temp dirs on. Each entry ends
// one server synchronously, as the 'exit' event requires.
const unstopped = new Set<() => void>();
const ENDING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Ends the server with this process until the returned function is called. */
function endWithThisProcess(end: () => void): () => void {
  // Listening to a signal replaces what it does by default: only while servers run.
  if (unstopped.size === 0) {
    process.on('exit', endAll);
    // First in line, so an app's `once` listener is still counted when this one runs.
    for (const signal of ENDING_SIGNALS) process.prependListener(signal, endOnSignal);
  }
  unstopped.add(end);
  return () => {
    unstopped.delete(end);
    if (unstopped.size === 0) stopListening();
  };
}

function endAll(): void {
  stopListening();
  for (const end of unstopped) end();
  unstopped.clear();
}

function stopListening(): void {
  process.off('exit', endAll);
  for (const signal of ENDING_SIGNALS) process.off(signal, endOnSignal);
}

function endOnSignal(signal: NodeJS.Signals): void {
  // Another listener owns the signal: it may still need the servers for a graceful
  // shutdown, and they end when the process exits. Without one, the signal does what it
  // would have done, after the servers end.
  if (process.listenerCount(signal) > 1) return;
  endAll();
  process.kill(process.pid, signal);
}

interface Ports {
  nats: string[];
  websocket: string[];
  monitoring?: string[];
}

/** What {@link startNatsServer} does, with Node's modules loaded. */
export async function launchNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const bin = options.bin ?? process.env.NATS_SERVER_BIN ?? 'nats-server';
  const timeoutMs = options.readyTimeoutMs ?? 10_000;
  await assertUsableBinary(bin, timeoutMs);
  // Read before the work dir exists: a config that cannot be read leaves nothing behind.
  const config = options.configFile ? withoutJetStreamStore(await inlined(resolve(options.configFile))) : '';
  const workDir = await mkdtemp(join(tmpdir(), 'jetsource-nats-'));
  const storeDir = options.storeDir ?? join(workDir, 'store');
  let ports = { nats: options.port ?? -1, ws: options.wsPort ?? -1, monitor: -1 };
  let child: ChildProcess | undefined;
  let log = '';
  const stopped = endWithThisProcess(() => {
    child?.kill('SIGKILL');
    rmSync(workDir, { recursive: true, force: true });
  });
  // Through process.kill: ChildProcess.kill would mark the process as being killed.
  const signal = (name: 'SIGSTOP' | 'SIGCONT') => {
    if (child?.pid !== undefined && !hasExited(child)) process.kill(child.pid, name);
  };
  const kill = async () => {
    const proc = child;
    if (!proc || proc.pid === undefined || hasExited(proc)) return;
    const gone = new Promise((done) => proc.once('exit', done));
    // A kill already under way is waited for, not started again.
    if (!proc.killed) {
      proc.kill('SIGTERM');
      // A paused process only acts on SIGTERM once it goes on.
      proc.kill('SIGCONT');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      void gone.then(() => clearTimeout(timer));
    }
    await gone;
  };

  const launch = async () => {
    const configPath = join(workDir, `server-${Date.now()}.conf`);
    const lines = [
      // A later key replaces an earlier one: listeners and the store are ours, everything
      // else is the config's, its jetstream block too. The store is set at top level, which
      // replaces a top-level one in the config; one in its jetstream block was removed (the
      // server refuses a store dir set in both places).
      config,
      `store_dir: ${JSON.stringify(storeDir)}`,
      `listen: "127.0.0.1:${ports.nats}"`,
      `http: "127.0.0.1:${ports.monitor}"`,
      `websocket { listen: "127.0.0.1:${ports.ws}", no_tls: true, ping_interval: "20s" }`,
      `ports_file_dir: "${workDir}"`,
      options.extraConfig ?? '',
    ];
    await writeFile(configPath, lines.join('\n') + '\n');
    log = '';
    // -js turns JetStream on without a jetstream block, which would replace the config's.
    const proc = spawn(bin, ['-js', '-c', configPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    // The newest output only: a server that runs for days must not grow the test's memory.
    const keep = (d: Buffer) => (log = (log + d.toString()).slice(-LOG_TAIL));
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    const exited = new Promise<never>((_, reject) => {
      proc.once('error', (err) =>
        reject(new Error(`cannot run ${bin}: ${err.message}. Set NATS_SERVER_BIN.`)),
      );
      proc.once('exit', (code, signal) =>
        reject(new Error(`nats-server exited with ${code ?? signal}:\n${log}`)),
      );
    });
    exited.catch(() => undefined);
    const found = await Promise.race([waitForPorts(workDir, proc, timeoutMs), exited]).catch(
      async (err: unknown) => {
        await kill();
        throw err;
      },
    );
    if (!found) {
      // Still starting when we give up: it must not hold its ports on.
      await kill();
      throw new Error(`nats-server did not start listening within ${timeoutMs} ms:\n${log}`);
    }
    ports = {
      nats: portOf(found.nats[0]),
      ws: portOf(found.websocket[0]),
      monitor: portOf(found.monitoring?.[0]),
    };
  };

  try {
    await launch();
  } catch (err) {
    // No handle reaches the caller, so nothing would ever remove the config and store.
    await rm(workDir, { recursive: true, force: true });
    stopped();
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    get url() {
      return `nats://127.0.0.1:${ports.nats}`;
    },
    get wsUrl() {
      return `ws://127.0.0.1:${ports.ws}`;
    },
    get port() {
      return ports.nats;
    },
    get wsPort() {
      return ports.ws;
    },
    get log() {
      return log;
    },
    get monitorUrl() {
      return `http://127.0.0.1:${ports.monitor}`;
    },
    storeDir,
    kill,
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
    restart: async () => {
      await kill();
      await launch();
    },
    // Every caller gets the one stop, which ends once the process has exited and the files are gone.
    stop: () =>
      (stopping ??= (async () => {
        await kill();
        // A caller's own store dir lives elsewhere; ours lives inside workDir.
        await rm(workDir, { recursive: true, force: true });
        stopped();
      })()),
  };
}

/**
 * Fails early and plainly on a binary that is missing, hangs, is no nats-server, or is too
 * old for jetsource, which would otherwise start (or trip over a config key it lacks) and
 * fail later in a confusing way.
 */
async function assertUsableBinary(bin: string, timeoutMs: number): Promise<void> {
  const install = 'install nats-server 2.14.4 or newer, or set NATS_SERVER_BIN to one';
  let output: string;
  try {
    const run = promisify(execFile);
    output = (await run(bin, ['--version'], { timeout: timeoutMs, killSignal: 'SIGKILL' })).stdout;
  } catch (err) {
    // Killed means it ran out of time: a hung binary must not hang the start.
    const problem = (err as { killed?: boolean }).killed
      ? `${bin} --version did not answer within ${timeoutMs} ms`
      : `cannot run ${bin} (${(err as Error).message})`;
    throw new Error(`${problem}: ${install}.`, { cause: err });
  }
  const version = /nats-server:?\s+v?(\d+\.\d+\.\d+)/.exec(output)?.[1];
  if (!version)
    throw new Error(
      `${bin} printed no nats-server version for --version (${JSON.stringify(output.trim().split('\n')[0])}): ${install}.`,
    );
  if (!supportsAtomicAppends(version))
    throw new UnsupportedServerError(version, `at ${bin} lacks atomic batches that keep expectations`);
}

// `include` starting a statement, then a path quoted or bare (the server's lexer allows both).
const INCLUDE = /(^|[\n{;,])[ \t]*include[ \t]+(?:"([^"]*)"|'([^']*)'|([^\s;}]+))/gi;

/**
 * A config file's text with each `include` replaced by the included text, and comments
 * dropped. nats-server reads an include relative to the file that holds it and takes no
 * absolute path, so the launcher's own config can only hold the user's config written out.
 */
async function inlined(file: string, including: string[] = []): Promise<string> {
  if (including.includes(file))
    throw new Error(`config ${file} includes itself: ${[...including, file].join(' → ')}`);
  const text = uncommented(await readFile(file, 'utf8'));
  const included = await Promise.all(
    Array.from(text.matchAll(INCLUDE), (m) =>
      inlined(resolve(dirname(file), m[2] ?? m[3] ?? m[4]!), [...including, file]),
    ),
  );
  return text.replace(INCLUDE, (_, before: string) => `${before}\n${included.shift()}\n`);
}

/**
 * `config` without a store directory (`store_dir`, `storedir` or `store`) in its top-level
 * `jetstream { }` blocks, so the launcher can set its own while the blocks' other settings
 * stay. Comments are dropped; quoted text is not mistaken for syntax.
 */
export function withoutJetStreamStore(config: string): string {
  let text = uncommented(config);
  const top = /(?:^|[\s;,])["']?(jetstream)["']?\s*[:=]?\s*\{/gi;
  for (let found = top.exec(text); found; found = top.exec(text)) {
    const at = found.index + found[0].indexOf(found[1]!);
    if (depthAt(text, at) !== 0) continue;
    const open = found.index + found[0].length;
    const close = blockEnd(text, open);
    // A key starts a statement (a value spelled `store` is no key), quoted or not.
    const settings = text
      .slice(open, close)
      .replace(
        /(^|[\n{;,])([ \t]*)["']?(?:store_dir|storedir|store)["']?(?:[ \t]*[:=][ \t]*|[ \t]+)(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s;,}]+)[ \t]*[,;]?[ \t]*/gi,
        '$1$2',
      );
    // The search goes on after this block's opening, which the edit leaves in place.
    text = text.slice(0, open) + settings + text.slice(close);
  }
  return text;
}

/** `text` with `#` and `//` comments blanked (outside quotes, which may hold `\\"`). */
function uncommented(text: string): string {
  let quote = '';
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === '\\') {
        out += c + (text[i + 1] ?? '');
        i++;
        continue;
      }
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' || (c === '/' && text[i + 1] === '/')) {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
      continue;
    }
    out += c;
  }
  return out;
}

/** Brace depth just before `index`, outside quotes. */
function depthAt(text: string, index: number): number {
  let depth = 0;
  braces(text, 0, index, (d) => (depth += d));
  return depth;
}

/** Where the block opened just before `open` closes (the text's end when it does not). */
function blockEnd(text: string, open: number): number {
  let depth = 1;
  return braces(text, open, text.length, (d) => (depth += d) === 0);
}

/** Calls `step` with +1 / -1 for each brace outside quotes in [from, to); stops where it returns true. */
function braces(text: string, from: number, to: number, step: (delta: 1 | -1) => unknown): number {
  let quote = '';
  for (let i = from; i < to; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if ((c === '{' || c === '}') && step(c === '{' ? 1 : -1) === true) return i;
  }
  return to;
}

/** Exited on its own, with a code or killed by a signal (then its exit code stays null). */
const hasExited = (proc: ChildProcess) => proc.exitCode !== null || proc.signalCode !== null;

function portOf(url: string | undefined): number {
  return url ? Number(new URL(url).port) : -1;
}

/** The ports the server wrote once it listens; undefined when it exits or the time runs out first. */
async function waitForPorts(dir: string, proc: ChildProcess, timeoutMs: number): Promise<Ports | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !hasExited(proc)) {
    const file = (await readdir(dir)).find((f) => f.endsWith(`_${proc.pid}.ports`));
    if (file) {
      const text = await readFile(join(dir, file), 'utf8').catch(() => '');
      if (text) return JSON.parse(text) as Ports;
    }
    await sleep(20);
  }
  return undefined;
}
