// A small static server for the demo site and the browser tests: serves www/ at /, the built
// package at /pkg/, optional extra directories, and proxies the demo inspector's reads to the
// collector's admin API so the admin token never reaches the browser. HTTPS when given a
// certificate, plain HTTP otherwise (loopback only).
//
// As a module: startStaticServer(options) -> { url, close }. As a script: see `usage` below.

import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { extname, join, normalize, resolve, sep, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
};

/**
 * Starts the server.
 * @param {object} options
 * @param {Record<string,string>} options.mounts URL prefix ('/', '/pkg/') to directory.
 * @param {string} [options.host] default 127.0.0.1
 * @param {number} [options.port] default 0 (any free port)
 * @param {{cert: string, key: string}} [options.tls] PEM paths; plain HTTP without.
 * @param {{url: string, token: string, ca?: string}} [options.inspector] collector admin API for
 *   GET /inspector/api/<path>.
 * @param {string} [options.csp] a Content-Security-Policy for HTML responses.
 * @param {Record<string, unknown>} [options.documents] JSON documents served at fixed paths
 *   (the demo reads its endpoint and key from /demo-config.json).
 */
export async function startStaticServer(options) {
  const mounts = Object.entries(options.mounts)
    .map(([prefix, dir]) => [prefix.endsWith('/') ? prefix : prefix + '/', resolve(dir)])
    .sort((a, b) => b[0].length - a[0].length);
  const handler = (req, res) => {
    handle(req, res, mounts, options).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error');
    });
  };
  const server = options.tls
    ? createHttpsServer({ cert: readFileSync(options.tls.cert), key: readFileSync(options.tls.key) }, handler)
    : createHttpServer(handler);
  const host = options.host ?? '127.0.0.1';
  await new Promise((ok, fail) => server.once('error', fail).listen(options.port ?? 0, host, ok));
  const { port } = server.address();
  const scheme = options.tls ? 'https' : 'http';
  const shownHost = options.tls ? 'localhost' : host;
  return {
    url: `${scheme}://${shownHost}:${port}`,
    port,
    close: () => new Promise((ok) => { server.closeAllConnections?.(); server.close(() => ok()); }),
  };
}

async function handle(req, res, mounts, options) {
  const url = new URL(req.url, 'http://placeholder');
  if (options.documents && Object.hasOwn(options.documents, url.pathname)) {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(options.documents[url.pathname]));
    return;
  }
  if (url.pathname.startsWith('/inspector/api/') && options.inspector) {
    return proxyInspector(req, res, url, options.inspector);
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  let pathname;
  try {
    pathname = decodeURIComponent(url.pathname);
  } catch {
    res.writeHead(400).end();
    return;
  }
  const mount = mounts.find(([prefix]) => pathname.startsWith(prefix) || pathname + '/' === prefix);
  if (!mount) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    return;
  }
  const [prefix, dir] = mount;
  let file = normalize(join(dir, pathname.slice(prefix.length)));
  if (file !== dir && !file.startsWith(dir + sep)) {
    res.writeHead(403).end();
    return;
  }
  try {
    if ((await stat(file)).isDirectory()) file = join(file, 'index.html');
    const body = await readFile(file);
    const type = TYPES[extname(file)] ?? 'application/octet-stream';
    const headers = { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
    if (type.startsWith('text/html') && options.csp) headers['content-security-policy'] = options.csp;
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  }
}

function proxyInspector(req, res, url, inspector) {
  if (req.method !== 'GET') {
    res.writeHead(405).end();
    return Promise.resolve();
  }
  const target = new URL(url.pathname.slice('/inspector/api'.length) + url.search, inspector.url);
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((done) => {
    const upstream = request(
      target,
      { headers: { authorization: `Bearer ${inspector.token}` }, ca: inspector.ca ? readFileSync(inspector.ca) : undefined },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, { 'content-type': answer.headers['content-type'] ?? 'application/json', 'cache-control': 'no-store' });
        answer.pipe(res).on('finish', done);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end('{"error":"collector unreachable"}');
      done();
    });
    upstream.end();
  });
}

const usage = `usage: node scripts/serve.mjs [--port N] [--host H] [--cert PEM --key PEM]
  [--inspector URL --token T [--ca PEM]] [--mount /prefix/=dir ...]
Serves www/ at / and pkg/ at /pkg/.`;

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const take = (flag) => {
    const at = argv.indexOf(flag);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  if (argv.includes('--help')) {
    console.log(usage);
    process.exit(0);
  }
  const mounts = { '/': join(root, 'www'), '/pkg/': join(root, 'pkg') };
  argv.forEach((arg, i) => {
    if (arg === '--mount') {
      const [prefix, dir] = argv[i + 1].split('=');
      mounts[prefix] = resolve(dir);
    }
  });
  const cert = take('--cert');
  const key = take('--key');
  const inspectorUrl = take('--inspector');
  const server = await startStaticServer({
    mounts,
    host: take('--host'),
    port: Number(take('--port') ?? 0),
    tls: cert && key ? { cert, key } : undefined,
    inspector: inspectorUrl ? { url: inspectorUrl, token: take('--token') ?? '', ca: take('--ca') } : undefined,
  });
  console.log(`serving ${server.url}`);
  const stop = () => server.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
