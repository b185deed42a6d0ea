import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
// @ts-expect-error -- plain ESM script without types
import { debianMirror, isNewEnough } from '../../scripts/nats-server.mjs';

// Runs scripts/nats-server.mjs as `npm test` does, against fake binaries: no network.
const script = fileURLToPath(new URL('../../scripts/nats-server.mjs', import.meta.url));
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'jetsource-provision-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('new enough means what the library accepts: 2.14.4 and up, or 2.12.14 and up on the 2.12 line', () => {
  const accepted = ['2.14.4', '2.15.1', '2.12.14', '2.12.20', '3.0.0'];
  const refused = ['2.14.3', '2.13.9', '2.12.13', '2.11.99', '2.9.0', '1.99.99'];
  expect(accepted.filter((v) => !(isNewEnough as (v: string) => boolean)(v))).toEqual([]);
  expect(refused.filter((v) => (isNewEnough as (v: string) => boolean)(v))).toEqual([]);
});

/** A shell script in the scratch dir, executable unless `mode` says otherwise. */
function fake(name: string, body: string, mode = 0o755): string {
  const file = join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, mode);
  return file;
}

function provision(env: NodeJS.ProcessEnv, scriptPath = script) {
  const run = spawnSync(process.execPath, [scriptPath], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return { status: run.status, stdout: run.stdout.trim(), stderr: run.stderr };
}

describe('NATS_SERVER_BIN', () => {
  test('is used when it names a nats-server new enough', () => {
    const bin = fake('nats-server-ok', 'echo "nats-server: v2.15.1"');
    expect(provision({ NATS_SERVER_BIN: bin })).toEqual({ status: 0, stdout: bin, stderr: '' });
  });

  test.each([
    ['another program', () => process.execPath, /is not nats-server \(--version printed "v\d+/],
    ['a missing file', () => join(dir, 'missing'), /does not exist/],
    [
      'a file that is not executable',
      () => fake('not-executable', 'echo "nats-server: v2.15.1"', 0o644),
      /is not executable/,
    ],
    [
      'a nats-server too old',
      () => fake('nats-server-old', 'echo "nats-server: v2.14.3"'),
      /is nats-server 2\.14\.3/,
    ],
    ['a program that hangs', () => fake('hangs', 'exec sleep 60'), /did not answer --version within 5 s/],
  ])('fails loudly, without falling back, when it is %s', (_, bin, problem) => {
    const chosen = bin();
    const started = Date.now();
    const { status, stdout, stderr } = provision({ NATS_SERVER_BIN: chosen });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(status).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain(`NATS_SERVER_BIN=${chosen} `);
    expect(stderr).toMatch(problem);
    expect(stderr).toContain('jetsource needs nats-server >= 2.14.4');
    expect(stderr).toContain('Point NATS_SERVER_BIN at one, or unset it');
    expect(stderr).not.toContain('fetching');
  });
});

test.skipIf(!debianMirror())('a download that yields no package says so, with apt’s output', () => {
  // A copy of the script, so its cache is in the scratch dir; apt-get is a fake that fetches nothing.
  const copy = join(dir, 'checkout', 'scripts', 'nats-server.mjs');
  mkdirSync(join(dir, 'checkout', 'scripts'), { recursive: true });
  cpSync(script, copy);
  mkdirSync(join(dir, 'bin'));
  fake('bin/apt-get', 'echo "E: Unable to locate package nats-server" >&2');
  const { status, stderr } = provision({ NATS_SERVER_BIN: '', PATH: join(dir, 'bin') }, copy);
  expect(status).toBe(1);
  expect(stderr).toContain(
    'apt-get download fetched no nats-server package; apt said:\nE: Unable to locate package',
  );
  expect(stderr).toContain('set NATS_SERVER_BIN=/path/to/nats-server');
});
