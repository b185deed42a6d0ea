// Tests of the built package run against dist/, rebuilding it once when src/ is newer.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const distEntry = join(root, 'dist/index.js');

const inputs = ['src', 'package.json', 'tsup.config.ts'].map((p) => join(root, p));
const lock = join(root, '.cache/dist-build.lock');

/** dist/index.js, built first when missing or older than any input. */
export async function ensureDist(): Promise<string> {
  // Test files run in parallel, and tsup cleans dist/ first: one build at a time.
  await acquire();
  try {
    if (isStale()) await promisify(execFile)('npx', ['tsup'], { cwd: root, timeout: 60_000 });
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
  return distEntry;
}

function isStale(): boolean {
  if (!existsSync(distEntry)) return true;
  return Math.max(...inputs.map(newest)) > statSync(distEntry).mtimeMs;
}

function newest(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newest(join(path, name))));
}

async function acquire(): Promise<void> {
  mkdirSync(join(root, '.cache'), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lock); // atomic: exactly one caller creates it
      writeFileSync(join(lock, 'pid'), String(process.pid));
      return;
    } catch {
      if (!holderAlive()) rmSync(lock, { recursive: true, force: true });
      await sleep(100);
    }
  }
}

/** False once the process that took the lock is gone (a killed run); true while it may still be writing its pid. */
function holderAlive(): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(join(lock, 'pid'), 'utf8'));
  } catch {
    // No pid yet: the holder is between mkdir and write, unless that was long ago.
    return Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? 0) < 10_000;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
