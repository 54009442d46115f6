// A loopback proxy in front of oauthd that makes it deviate in one way (MUTANT), so the
// interop suites can be checked for teeth without touching the server.
import http from 'node:http';
import fs from "node:fs";
const upstreamPort = () => Number(fs.readFileSync(process.env.UPSTREAM_FILE, "utf8"));
const mutant = process.env.MUTANT;
let self = 0;
const flip = (jws) => { const [h, p, s] = jws.split('.'); const b = Buffer.from(s, 'base64url'); b[0] ^= 1; return `${h}.${p}.${b.toString('base64url')}`; };
const server = http.createServer(async (req, res) => {
  const chunks = []; for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks);
  const up = http.request({ host: '127.0.0.1', port: upstreamPort(), method: req.method, path: req.url, headers: req.headers }, async (ur) => {
    const out = []; for await (const c of ur) out.push(c);
    let data = Buffer.concat(out);
    const headers = { ...ur.headers };
    const path = req.url.split('?')[0];
    const loc = headers.location;
    if (loc && loc.startsWith('http://127.0.0.1/callback')) {
      const u = new URL(loc);
      if (mutant === 'strip-iss' || mutant === 'no-rfc9207') u.searchParams.delete('iss');
      if (mutant === 'wrong-iss') u.searchParams.set('iss', `http://127.0.0.1:${self}`);
      if (mutant === 'drop-state') u.searchParams.delete('state');
      headers.location = u.href;
    }
    const json = () => JSON.parse(data.toString());
    const put = (o) => { data = Buffer.from(JSON.stringify(o)); };
    if (path.startsWith('/.well-known/')) {
      const doc = json();
      if (mutant === 'no-rfc9207' || mutant === 'unadvertised-iss') delete doc.authorization_response_iss_parameter_supported;
      if (mutant === 'wrong-issuer-metadata') doc.issuer = `http://127.0.0.1:${self}`;
      put(doc);
    }
    if (path === '/o/oauth2/token' && ur.statusCode === 200) {
      const t = json();
      const form = new URLSearchParams(body.toString());
      if (mutant === 'corrupt-id-token' && t.id_token) t.id_token = flip(t.id_token);
      if (mutant === 'no-rotation' && form.get('grant_type') === 'refresh_token') t.refresh_token = form.get('refresh_token');
      if (mutant === 'token-type-mac') t.token_type = 'mac';
      put(t);
    }
    if (path === '/o/oauth2/introspect' && ur.statusCode === 200 && mutant === 'introspect-always-active') {
      const t = json(); if (!t.active) put({ active: true, client_id: 'x', sub: 'y' });
    }
    if (path === '/o/oauth2/userinfo' && ur.statusCode === 200 && mutant === 'userinfo-other-sub') {
      const t = json(); t.sub = 'someone-else'; put(t);
    }
    delete headers['transfer-encoding'];
    headers['content-length'] = data.length;
    res.writeHead(ur.statusCode, headers); res.end(data);
  });
  up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
  up.end(body);
});
server.listen(0, '127.0.0.1', () => { self = server.address().port; console.log(self); });
