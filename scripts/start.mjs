// `npm start`: the whole product on this machine. Installs the build tools a fresh machine lacks,
// builds the npm package and the collector when they are missing or older than their sources,
// starts the collector over TLS with a local certificate and an SQLite file in .data/collector,
// serves the demo site over HTTPS with the same certificate, and prints the URL.
//
// Ports: PORT (the site, default 8443) and COLLECTOR_PORT (default 8444); CONSENTRY_DATA_DIR moves
// the collector's data directory. Ctrl-C stops both; the collector drains its requests and closes
// the database cleanly.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDemoSite } from './demo-site.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const sitePort = Number(process.env.PORT ?? 8443);
const collectorPort = Number(process.env.COLLECTOR_PORT ?? 8444);
const dataDir = resolve(process.env.CONSENTRY_DATA_DIR ?? join(root, '.data', 'collector'));
const apiKey = 'pk_demo';
const siteOrigin = `https://localhost:${sitePort}`;

const say = (text) => console.log(`\x1b[1m[start]\x1b[0m ${text}`);
const run = (command, args) => execFileSync(command, args, { cwd: root, stdio: 'inherit' });

/** The newest modification time of any file under `paths` (directories walked). */
function newest(paths) {
  let latest = 0;
  const visit = (path) => {
    if (!existsSync(path)) return;
    const info = statSync(path);
    if (info.isDirectory()) {
      for (const name of readdirSync(path)) if (name !== 'generated') visit(join(path, name));
    } else {
      latest = Math.max(latest, info.mtimeMs);
    }
  };
  paths.forEach((path) => visit(join(root, path)));
  return latest;
}

const modified = (file) => (existsSync(join(root, file)) ? statSync(join(root, file)).mtimeMs : 0);

say('checking the build tools');
run('bash', ['scripts/ensure-tools.sh', '--no-browser']);

const sdkSources = ['core/src', 'core/Cargo.toml', 'src', 'js', 'Cargo.toml', 'Cargo.lock'];
if (modified('pkg/consentry_bg.wasm') < newest(sdkSources) || modified('pkg/consentry.js') < newest(['js'])) {
  say('building the npm package (pkg/)');
  run('node', ['scripts/build.mjs']);
}
say('building the collector');
run('cargo', ['build', '--release', '--locked', '-p', 'consentry-collector']);

say(`starting the collector on https://127.0.0.1:${collectorPort} (data in ${dataDir})`);
const collector = spawn(
  join(root, 'target', 'release', 'consentry-collector'),
  [
    '--listen', `127.0.0.1:${collectorPort}`,
    '--data-dir', dataDir,
    '--api-key', `demo=${apiKey}`,
    '--allow-origin', siteOrigin,
    '--sale-purposes', 'advertising',
    // The demo encrypts what it stores with a key it makes once in its data directory.
    '--generate-encryption-key',
  ],
  { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] },
);
const collectorUrl = await new Promise((ok, fail) => {
  let seen = '';
  collector.stderr.on('data', (chunk) => {
    process.stderr.write(chunk);
    seen += chunk;
    const match = seen.match(/listening on (https:\/\/\S+)/);
    if (match) ok(match[1].replace(/\/$/, ''));
  });
  collector.once('exit', (code) => fail(new Error(`the collector exited with ${code} (is port ${collectorPort} in use? set COLLECTOR_PORT)`)));
});

let site;
try {
  site = await startDemoSite({
    port: sitePort,
    collectorUrl,
    collectorDataDir: dataDir,
    adminToken: readFileSync(join(dataDir, 'admin-token'), 'utf8').trim(),
    apiKey,
  });
} catch (error) {
  collector.kill('SIGTERM');
  console.error(`cannot serve the demo on port ${sitePort}: ${error.message} (set PORT to use another)`);
  process.exit(1);
}

const spki = readFileSync(join(dataDir, 'spki.txt'), 'utf8').trim();
console.log(`
\x1b[1mConsentry demo: ${site.url}\x1b[0m

The certificate is from a local CA the collector made in ${dataDir}.
Trust ${join(dataDir, 'ca.pem')} (see collector/README.md), or start a Chromium that trusts just
this certificate's key:
  chromium --user-data-dir=$(mktemp -d) --ignore-certificate-errors-spki-list=${spki} ${site.url}

\x1b[1mPrivacy console: ${collectorUrl}/console/\x1b[0m
Sign in with the demo admin token, kept in ${join(dataDir, 'admin-token')}:
  cat ${join(dataDir, 'admin-token')}
(or with a viewer or editor token: see "The console" in collector/README.md).

Ctrl-C stops the site and the collector.`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await site.close();
  collector.kill('SIGTERM');
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
collector.once('exit', (code) => {
  if (!stopping) console.error(`the collector stopped (${code})`);
  site.close().then(() => process.exit(stopping ? 0 : 1));
});
