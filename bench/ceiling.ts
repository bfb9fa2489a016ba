import { createServer } from 'node:http';

/** The ceiling: a bare node:http server answering the same JSON as toko's /health, on PORT. */
const body = JSON.stringify({ status: 'ok', modules: ['user', 'product', 'order', 'notification'] });
createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}).listen(Number(process.env.PORT), '127.0.0.1', () => process.stdout.write('ready\n'));
