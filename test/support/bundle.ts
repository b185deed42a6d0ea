// esbuild helpers shared by the isomorphism tests, the edge test and the bundle benchmark.
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build, type BuildOptions, type Plugin } from 'esbuild';
import { root } from './dist.js';

export const srcEntry = join(root, 'src/index.ts');

/** The dependencies a user's bundler dedupes: kept out when measuring jetsource's own code. */
export const dependencies = [/^@nats-io\//, /^rxjs(\/|$)/];

/** Resolves `jetsource` to `entry` (src or dist), as a user's bundler resolves the package. */
export function jetsourceAt(entry: string): Plugin {
  return {
    name: 'jetsource-at',
    setup(b) {
      b.onResolve({ filter: /^jetsource$/ }, () => ({ path: entry }));
    },
  };
}

/** Marks bare imports matching `patterns` external (esbuild's own `external` takes no regexes). */
export function externalize(patterns: RegExp[]): Plugin {
  return {
    name: 'externalize',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) =>
        patterns.some((p) => p.test(args.path)) ? { path: args.path, external: true } : undefined,
      );
    },
  };
}

/** A Node built-in that a browser build could not map away, and who imports it. */
export interface BuiltinImport {
  readonly path: string;
  readonly importer: string;
}

const builtinPattern = new RegExp(
  `^(node:.*|${builtinModules.map((m) => m.replace(/[/.]/g, '\\$&')).join('|')})$`,
);
const probing = Symbol('probing');

/**
 * Records every import of a Node built-in that the browser build keeps, instead of failing at
 * the first. Imports a package's `browser` field disables (tweetnacl's `crypto`) resolve and pass.
 */
export function recordNodeBuiltins(found: BuiltinImport[]): Plugin {
  return {
    name: 'record-node-builtins',
    setup(b) {
      b.onResolve({ filter: builtinPattern }, async (args) => {
        if (args.pluginData === probing) return undefined;
        const { kind, importer, resolveDir } = args;
        const resolved = await b.resolve(args.path, { kind, importer, resolveDir, pluginData: probing });
        if (resolved.errors.length === 0) return undefined;
        found.push({ path: args.path, importer: importer.replace(root, '') });
        return { path: args.path, external: true };
      });
    },
  };
}

/** Node globals a browser lacks; `define` rewrites only free references, so own uses show up by name. */
export const nodeGlobalMarkers = Object.fromEntries(
  ['process', 'Buffer', 'global', '__dirname', '__filename', 'setImmediate'].map((g) => [
    g,
    `__NODE_GLOBAL_${g}`,
  ]),
);

/** Bundles `code` (an app, ESM) for browsers and returns the single output file's text. */
export async function bundleApp(code: string, options: BuildOptions = {}): Promise<string> {
  const result = await build({
    stdin: { contents: code, resolveDir: root, loader: 'ts', sourcefile: 'app.ts' },
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'silent',
    legalComments: 'none',
    ...options,
  });
  return result.outputFiles![0]!.text;
}

/** Minified and gzipped size in KB, as a CDN would serve it. */
export const gzipKb = (text: string): number => gzipSync(text, { level: 9 }).length / 1024;
