// A minimal JSON HTTP(S) client for tests, trusting an optional CA (the collector's local one).
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** Sends a request; resolves { status, headers, text, json() }. */
export function request(url, { method = 'GET', headers = {}, body, ca } = {}) {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((ok, fail) => {
    const req = send(target, { method, headers, ca }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        ok({ status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) });
      });
    });
    req.on('error', fail);
    req.end(body);
  });
}
