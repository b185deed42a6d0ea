// The built ESM bundle in Chromium with no bundler: dist/ is served as is and an import map
// resolves its dependencies. Both jetsource and jetsource/testing (the memory store and the
// conformance suite, whose only Node part, the server launcher, loads when called). nats.js ships CommonJS only, so each dependency gets an ESM
// vendor module (esbuild, code splitting, so nats-core is one instance for all of them).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize } from 'node:path';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { AddressInfo } from 'node:net';
import { createEventStore, defineView } from '../../src/index.js';
import { ensureStore, startProjector, type Projector } from '../../src/server.js';
import { launchChromium } from '../support/chromium.js';
import { ensureDist, root } from '../support/dist.js';
import { unique, useServer, type TestServer } from '../support/nats.js';

let t: TestServer;
let vendorDir: string;
let http: Server;
let browser: Browser;
let projector: Projector;

/**
 * The bare specifiers entries and the chunks they import statically use: exactly what the
 * import map must resolve (a chunk only imported dynamically is not loaded).
 */
async function bareImportsOf(entries: string[]): Promise<string[]> {
  const bare = new Set<string>();
  const seen = new Set<string>();
  const visit = async (file: string): Promise<void> => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = await readFile(file, 'utf8');
    for (const [, spec] of text.matchAll(/^(?:import|export)\s[^;"]*\bfrom\s*"([^"]+)"/gm)) {
      if (spec!.startsWith('.')) await visit(join(dirname(file), spec!));
      else bare.add(spec!);
    }
  };
  for (const entry of entries) await visit(entry);
  return [...bare].sort();
}

/** One ESM module per dependency, sharing chunks; returns the import map. */
async function vendor(specifiers: string[], outdir: string): Promise<Record<string, string>> {
  const require = createRequire(join(root, 'package.json'));
  const file = (spec: string) => spec.replace(/[@/]/g, '_');
  const entryPoints: Record<string, string> = {};
  for (const spec of specifiers) {
    // Named re-exports, since `export *` from CommonJS has no static names in ESM.
    const names = Object.keys(require(spec) as object).filter((n) => /^[A-Za-z_$][\w$]*$/.test(n));
    const entry = join(outdir, `${file(spec)}.entry.js`);
    await writeFile(entry, `export { ${names.join(', ')} } from ${JSON.stringify(spec)};\n`);
    entryPoints[file(spec)] = entry;
  }
  await build({
    entryPoints,
    absWorkingDir: root,
    nodePaths: [join(root, 'node_modules')],
    outdir: join(outdir, 'vendor'),
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'silent',
  });
  return Object.fromEntries(specifiers.map((spec) => [spec, `/vendor/${file(spec)}.js`]));
}

const types: Record<string, string> = {
  '.js': 'text/javascript',
  '.html': 'text/html',
  '.map': 'application/json',
};

/** Serves the pages (by path), `/dist/*`, `/page/*` and `/vendor/*` from their directories. */
function serve(pages: Record<string, string>, dirs: Record<string, string>): Promise<Server> {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const page = pages[path];
    if (page) return res.writeHead(200, { 'content-type': 'text/html' }).end(page);
    const [, mount, ...rest] = path.split('/');
    const dir = dirs[mount ?? ''];
    const file = dir && normalize(join(dir, ...rest));
    if (!file || !file.startsWith(dir)) return res.writeHead(404).end();
    const body = await readFile(file).catch(() => undefined);
    if (!body) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

beforeAll(async () => {
  // First, so a missing browser fails at once (never a skip).
  browser = await launchChromium();
  const dist = await ensureDist();
  const testing = join(root, 'dist/testing/index.js');
  vendorDir = await mkdtemp(join(tmpdir(), 'jetsource-browser-'));
  const imports = {
    jetsource: '/dist/index.js',
    'jetsource/testing': '/dist/testing/index.js',
    ...(await vendor(await bareImportsOf([dist, testing]), vendorDir)),
  };
  const page = (script: string) => `<!doctype html><meta charset="utf-8"><title>jetsource ${script}</title>
<link rel="icon" href="data:,"><script type="importmap">${JSON.stringify({ imports })}</script>
<script type="module" src="/page/${script}.js"></script>`;
  http = await serve(
    { '/': page('smoke'), '/testing': page('testing') },
    {
      dist: join(root, 'dist'),
      vendor: join(vendorDir, 'vendor'),
      page: join(root, 'test/browser/page'),
    },
  );

  t = await useServer({ configFile: 'nats-server.conf' });
  const service = await t.connectAs('acme', 'service');
  await ensureStore(service, {});
  type Bank = { Opened: { owner: string }; Deposited: { amount: number } };
  const balances = defineView<number, Bank>({
    name: 'balances',
    version: 1,
    filter: { entityType: 'account' },
    initial: 0,
    evolve: (total, e) => (e.type === 'Deposited' ? total + e.data.amount : total),
  });
  projector = await startProjector(createEventStore<Bank>({ connection: service, tenant: 'acme' }), balances);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await projector?.stop();
  await t?.close();
  await new Promise((done) => (http ? http.close(done) : done(undefined)));
  if (vendorDir) await rm(vendorDir, { recursive: true, force: true });
});

/** Opens a page and waits for what its script reports in `window.__result`, and for any problem on the way. */
async function runPage(path: string): Promise<{ result: unknown; problems: string[] }> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  page.on('response', (r) => r.status() >= 400 && problems.push(`${r.status()}: ${r.url()}`));
  const { port } = http.address() as AddressInfo;
  await page.goto(`http://127.0.0.1:${port}${path}`);
  const result = await page
    .waitForFunction(() => (window as { __result?: unknown }).__result, undefined, { timeout: 20_000 })
    .then((handle) => handle.jsonValue())
    .catch((err: Error) => ({ ok: false, error: `${err.message}\n${problems.join('\n')}` }));
  await page.close();
  return { result, problems };
}

test('dist/index.js connects, appends, watches, reads and reads a view in Chromium', async () => {
  const id = unique('ann');
  const { result, problems } = await runPage(`/?ws=${encodeURIComponent(t.server.wsUrl)}&id=${id}`);
  expect(result, problems.join('\n')).toEqual({
    ok: true,
    version: expect.any(Number),
    conflict: 'ConcurrencyError',
    watched: ['Opened', 'Deposited', 'caught-up'],
    read: ['Opened', 'Deposited'],
    view: { live: 5, get: 5 },
  });
  expect(problems).toEqual([]);
});

test('dist/testing: the memory store passes the conformance suite in Chromium, with no Node module loaded', async () => {
  const { conformanceCases } = await import('../../src/testing/index.js');
  const { result, problems } = await runPage('/testing');
  expect(result, problems.join('\n')).toEqual({ ok: true, ran: conformanceCases.length, failed: [] });
  expect(problems).toEqual([]);
});
