// Builds the npm package in pkg/: the optimised wasm, the facade + host + wasm-bindgen glue as
// one minified ES module (for bundlers and <script type="module">), the TypeScript declarations
// and package.json.
// Prints the gzip and brotli size of what a page loads against the budget; `--check` fails when
// the package grows past its ceiling (see below).
//
//   node scripts/build.mjs [--check] [--skip-cargo]

import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = join(root, 'pkg');
const generated = join(root, 'js', 'generated');
const args = new Set(process.argv.slice(2));

/** The budget for wasm + JS a page loads, gzip (issue 2). Not met yet: see CEILING. */
export const BUDGET_GZIP_BYTES = 20 * 1024;
/** What we aim for: below every JavaScript SDK in this market. */
export const TARGET_GZIP_BYTES = 16 * 1024;
/**
 * What `--check` (and so CI) fails above: the measured size rounded up, a guard against growth
 * while the package is over its budget. Lower it with every reduction; the build says how far the
 * package is from the budget. History: 30.5 KB; 38.5 KB with issue 6 (ChaCha20 ids, the tabs'
 * coordination and relaying, the sealed IndexedDB store: +8.5 KB, measured); 38.0 KB with
 * wasm-opt's size flags (-0.9 KB); 39.0 KB with the review's privacy fixes (batch headers
 * without times or notices, tab names scoped by endpoint: +1.0 KB). The 20 KB budget was
 * measured as out of reach while the core decides everything (issue 8).
 */
export const CEILING_GZIP_BYTES = 39 * 1024;

function run(command, commandArgs, options = {}) {
  execFileSync(command, commandArgs, { cwd: root, stdio: 'inherit', ...options });
}

const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;

if (!args.has('--skip-cargo')) {
  run('cargo', ['build', '--release', '--locked', '--target', 'wasm32-unknown-unknown', '-p', 'consentry']);
}
rmSync(generated, { recursive: true, force: true });
run('wasm-bindgen', [
  join(root, 'target/wasm32-unknown-unknown/release/consentry.wasm'),
  '--out-dir', generated,
  '--out-name', 'consentry_wasm',
  '--target', 'web',
  '--remove-name-section',
  '--remove-producers-section',
  // Every browser that runs wasm has TextEncoder.encodeInto; the facade always passes the wasm URL.
  '--encode-into', 'always',
  '--omit-default-module-path',
]);

rmSync(pkg, { recursive: true, force: true });
mkdirSync(pkg);
// wasm-opt from the npm package binaryen: Debian's older wasm-opt breaks the module.
run(join(root, 'node_modules/.bin/wasm-opt'), [
  // What these assume holds for this module: its memory starts zero-filled, the linker leaves
  // the first 1 KiB of it unused (Rust's data starts at 1 MiB), and no engine needs the
  // target-features section. -ocimfs inlines small functions with one caller. 0.9 KB gzip less.
  '--strip-target-features', '--low-memory-unused', '--zero-filled-memory',
  '-Oz', '-ocimfs', '20', '--converge', join(generated, 'consentry_wasm_bg.wasm'), '-o', join(pkg, 'consentry_bg.wasm'),
]);

const common = {
  entryPoints: [join(root, 'js/consentry.js')],
  bundle: true,
  minify: true,
  target: 'es2022',
  platform: 'browser',
  legalComments: 'none',
  logLevel: 'warning',
};
await esbuild.build({ ...common, format: 'esm', outfile: join(pkg, 'consentry.js') });
copyFileSync(join(root, 'js/consentry.d.ts'), join(pkg, 'consentry.d.ts'));
for (const file of ['README.md', 'LICENSE']) {
  try {
    copyFileSync(join(root, file), join(pkg, file));
  } catch {
    // Not written yet in a fresh checkout of an early commit; the package works without it.
  }
}
writeFileSync(
  join(pkg, 'package.json'),
  JSON.stringify(
    {
      name: 'consentry',
      version,
      description: 'Client-side consent and event SDK: every event is kept or dropped in the browser by the visitor\'s consent.',
      license: 'MIT',
      type: 'module',
      main: './consentry.js',
      module: './consentry.js',
      browser: './consentry.js',
      types: './consentry.d.ts',
      exports: {
        '.': { types: './consentry.d.ts', default: './consentry.js' },
        './consentry_bg.wasm': './consentry_bg.wasm',
      },
      files: ['consentry.js', 'consentry_bg.wasm', 'consentry.d.ts', 'README.md', 'LICENSE'],
      sideEffects: false,
      keywords: ['consent', 'gdpr', 'ccpa', 'analytics', 'privacy', 'webassembly'],
    },
    null,
    2,
  ) + '\n',
);

// What a page that imports the ES module loads.
const loaded = ['consentry.js', 'consentry_bg.wasm'];
const sizes = loaded.map((file) => {
  const bytes = readFileSync(join(pkg, file));
  return {
    file,
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
});
const total = {
  raw: sizes.reduce((sum, s) => sum + s.raw, 0),
  gzip: sizes.reduce((sum, s) => sum + s.gzip, 0),
  brotli: sizes.reduce((sum, s) => sum + s.brotli, 0),
};
const kb = (n) => (n / 1024).toFixed(1) + ' KB';
console.log('\nconsentry package size (what a page loads):');
for (const s of [...sizes, { file: 'total', ...total }]) {
  console.log(`  ${s.file.padEnd(18)} raw ${kb(s.raw).padStart(9)}   gzip ${kb(s.gzip).padStart(8)}   brotli ${kb(s.brotli).padStart(8)}`);
}
console.log(`  budget ${kb(BUDGET_GZIP_BYTES)} gzip, target ${kb(TARGET_GZIP_BYTES)} gzip, ceiling ${kb(CEILING_GZIP_BYTES)} gzip`);
if (total.gzip > BUDGET_GZIP_BYTES) {
  console.log(`  \x1b[33mover the budget by ${kb(total.gzip - BUDGET_GZIP_BYTES)} gzip\x1b[0m`);
}
writeFileSync(join(pkg, 'size.json'), JSON.stringify({ files: sizes, total }, null, 2) + '\n');

if (args.has('--check') && total.gzip > CEILING_GZIP_BYTES) {
  console.error(`size check failed: ${total.gzip} B gzip is over the ${CEILING_GZIP_BYTES} B ceiling`);
  process.exit(1);
}
