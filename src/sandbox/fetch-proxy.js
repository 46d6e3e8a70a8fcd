// safex (tier 2 sandbox): route Node's built-in fetch through the proxy in
// HTTPS_PROXY, which Node before 24 ignores. Loaded with `--require`.
'use strict';
(() => {
  const proxyUrl = process.env.HTTPS_PROXY || process.env.HTTP_PROXY;
  if (!proxyUrl || typeof fetch !== 'function') return;
  const sym = Symbol.for('undici.globalDispatcher.1');
  try { fetch('data:,').catch(() => {}); } catch (e) { return; }
  const current = globalThis[sym];
  if (!current || typeof current.constructor !== 'function') return;
  const Agent = current.constructor;
  const net = require('net');
  const tls = require('tls');
  const proxy = new URL(proxyUrl);
  const connect = (opts, callback) => {
    let done = false;
    const finish = (err, socket) => { if (!done) { done = true; callback(err, socket); } };
    const https = opts.protocol === 'https:';
    const port = Number(opts.port) || (https ? 443 : 80);
    const host = opts.hostname;
    const raw = net.connect(Number(proxy.port) || 3128, proxy.hostname);
    raw.once('error', (e) => finish(e));
    raw.once('connect', () => {
      raw.write(`CONNECT ${host.includes(':') ? `[${host}]` : host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
    });
    let head = '';
    const onData = (chunk) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      raw.removeListener('data', onData);
      const status = head.slice(0, head.indexOf('\r\n'));
      if (!/^HTTP\/1\.[01] 200/.test(status)) {
        raw.destroy();
        return finish(new Error(`the sandbox's proxy refused ${host}:${port}: ${status} ${head.slice(end + 4).trim()}`));
      }
      if (!https) return finish(null, raw);
      const secure = tls.connect({ socket: raw, servername: opts.servername || host, ALPNProtocols: ['http/1.1'] });
      secure.once('secureConnect', () => finish(null, secure));
      secure.once('error', (e) => finish(e));
    };
    raw.on('data', onData);
  };
  globalThis[sym] = new Agent({ connect });
})();
