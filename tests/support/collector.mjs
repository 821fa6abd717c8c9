// Starts the real collector binary for tests and talks to its admin API: what was stored,
// counters, fault injection and reset. Tests assert on what the collector recorded.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from './http.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The collector binary cargo built last (release or debug): an older build of the other
 * profile must not stand in for the code under test. */
export function collectorBinary() {
  const built = ['release', 'debug']
    .map((profile) => join(root, 'target', profile, 'consentry-collector'))
    .filter((path) => existsSync(path))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (!built.length) throw new Error('consentry-collector is not built: run `cargo build -p consentry-collector`');
  return built[0];
}

/**
 * Starts a collector on an ephemeral loopback port.
 * @param {{tls?: boolean, origins?: string[], extra?: string[], rateLimits?: string[]}} options
 */
export async function startCollector(options = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'consentry-collector-'));
  const adminToken = 'test-admin-token-' + Math.random().toString(36).slice(2);
  const args = [
    '--listen', '127.0.0.1:0',
    '--data-dir', dataDir,
    '--api-key', 'test=pk_test',
    '--admin-token', adminToken,
    '--fault-injection',
    // Tests encrypt at rest like production, with a key made in their data directory.
    '--generate-encryption-key',
    // Suites send bursts from one address: no rate limits unless a spec asks for its own.
    ...(options.rateLimits ?? ['--ip-rate-per-minute', '0', '--key-rate-per-minute', '0']),
    ...(options.tls ? [] : ['--plain-http', '--allow-loopback-origins']),
    ...(options.origins ?? []).flatMap((origin) => ['--allow-origin', origin]),
    ...(options.extra ?? []),
  ];
  const child = spawn(collectorBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs = [];
  const url = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('collector did not start:\n' + logs.join(''))), 20000);
    const scan = (chunk) => {
      logs.push(chunk.toString());
      const match = logs.join('').match(/listening on (https?:\/\/[^\s]+)/);
      if (match) {
        clearTimeout(timer);
        ok(match[1].replace(/\/$/, ''));
      }
    };
    child.stdout.on('data', scan);
    child.stderr.on('data', scan);
    child.once('exit', (code) => fail(new Error(`collector exited with ${code}:\n${logs.join('')}`)));
  });
  const ca = options.tls ? readFileSync(join(dataDir, 'ca.pem'), 'utf8') : undefined;
  const spki = options.tls ? readFileSync(join(dataDir, 'spki.txt'), 'utf8').trim() : undefined;
  const client = collectorClient(url, adminToken, ca);
  return {
    ...client,
    url,
    dataDir,
    adminToken,
    ca,
    spki,
    logs,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((ok) => child.once('exit', ok));
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A client for a running collector's admin API. */
export function collectorClient(url, adminToken, ca) {
  const admin = async (method, path, body) => {
    const response = await request(url + path, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      ca,
    });
    if (response.status < 200 || response.status > 299) throw new Error(`${method} ${path}: ${response.status} ${response.text}`);
    return response.text ? response.json() : undefined;
  };
  return {
    /** Every stored event, oldest first. */
    async events() {
      const all = [];
      for (let since = 0; ; ) {
        const page = await admin('GET', `/v1/events?since=${since}&limit=1000`);
        // A page may stop short of the limit at its content budget: the end is an empty page.
        if (page.events.length === 0) return all;
        all.push(...page.events);
        since = page.next_since;
      }
    },
    stats: () => admin('GET', '/v1/stats'),
    /** Makes the next batch requests fail in order: '500', '429:5', 'drop'. */
    faults: (next) => admin('POST', '/v1/admin/faults', { next }),
    reset: () => admin('POST', '/v1/admin/reset'),
  };
}
