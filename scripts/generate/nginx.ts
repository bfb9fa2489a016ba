/**
 * The gateway's nginx template (deploy/nginx/toko.conf.template): an upstream
 * per module, each module's public path prefixes routed to it, and the
 * gateway's own answers as problem documents.
 */
import { adminEventRoutes } from '../../src/http/admin-events.ts';
import { DOC_ROUTES } from '../../src/http/docs.ts';
import { QUEUES_PATH } from '../../src/http/queues-route.ts';
import { jsonAnswerHeaders } from '../../src/http/security-headers.ts';
import { MODULE_NAMES, PRODUCERS, TOKEN_ISSUER, type ModuleName } from '../../src/registry.ts';
import { BANNER, definition, upper } from './registry.ts';

/** The path prefixes a module's public routes live under: each route's path up to its first parameter, none inside another. */
export function routePrefixes(m: ModuleName): string[] {
  const paths = [
    ...definition(m).routes.map((r) => r.path),
    ...(PRODUCERS.includes(m) ? adminEventRoutes(m).map((r) => r.path) : []),
  ];
  const prefixes = [...new Set(paths.map((p) => p.split('/:')[0]!.replace(/\/+$/, '')))];
  const within = (p: string, q: string) => p !== q && (p.startsWith(`${q}/`) || p === q);
  return prefixes.filter((p) => !prefixes.some((q) => within(p, q))).sort();
}

const problem = (status: number, code: string, title: string, detail: string) =>
  `'{"type":"urn:toko:problem:${code}","title":"${title}","status":${status},"detail":"${detail}","code":"${code}"}'`;
const NOT_FOUND = problem(404, 'HTTP.NOT_FOUND', 'Not found', 'No such resource');

/**
 * The security headers a service sends with a JSON answer, for the answers
 * the gateway makes itself. Only those locations add them: a location that
 * proxies adds none, so a service's answer passes with its own headers, once.
 */
function securityHeaders(): string[] {
  return Object.entries(jsonAnswerHeaders()).map(([name, value]) => {
    if (/["$\\]/.test(value)) throw new Error(`${name}: a value nginx would have to quote differently`);
    return `add_header ${name} "${value}" always;`;
  });
}

/** A location that answers itself, with the services' security headers (and `extra` directives). */
function ownAnswer(match: string, status: number, type: string, body: string, extra: string[] = []): string {
  return [
    `  location ${match} {`,
    ...[...extra, `default_type ${type};`, ...securityHeaders(), `return ${status} ${body};`].map((d) => `    ${d}`),
    '  }',
  ].join('\n');
}

const HEADER = `# The toko gateway: routes each module's public paths to the service that
# hosts it. Used as is by docker-compose.split.yml (the nginx image fills the
# \${...} variables from its environment) and by \`npm run split\` and the split
# tests, which fill them with loopback addresses.
${BANNER}`;

/**
 * A module's replicas are skipped for a while after failing twice (refused,
 * timed out, 502 or 503): the gateway stops sending to a dead or draining
 * replica. nginx ignores both when a module's upstream has one server.
 */
const SKIP_FAILED = 'max_fails=2 fail_timeout=3s';
/**
 * Idle connections to a service are dropped here before the service drops
 * them (its keep-alive timeout is 5 s): a request sent on a connection the
 * service is closing at that moment fails, and a POST is never retried.
 */
const IDLE = 'keepalive_timeout 4s;';

/**
 * Idle connections to a module's replicas each nginx worker keeps for the next request. Fewer than the
 * requests a burst has in flight, and every connection past them is closed when its answer is in and opened
 * again for the next burst: at 16, orders through the split topology with two replicas of each service
 * (64 connections) opened about 25 new connections a second to each product replica (sockets in TIME_WAIT,
 * `ss -tan state time-wait`, over 10 s), and at most 2 at 64.
 */
export const UPSTREAM_KEEPALIVE = 64;

/**
 * An upstream per module, and one of them all for what any service can
 * answer. Each lives in a shared-memory zone, so that a server given as a DNS
 * name with `resolve` (docker-compose.split.yml) follows its replicas'
 * addresses as they come and go; `npm run split` writes one server per replica.
 */
function upstreams(): string {
  const own = MODULE_NAMES.map(
    (m) =>
      `upstream toko_${m} { zone toko_${m} 64k; server \${${upper(m)}_UPSTREAM} ${SKIP_FAILED}; keepalive ${UPSTREAM_KEEPALIVE}; ${IDLE} }`,
  );
  const any = `upstream toko_any { zone toko_any 64k; ${MODULE_NAMES.map((m) => `server \${${upper(m)}_UPSTREAM};`).join(' ')} keepalive 4; ${IDLE} }`;
  return `${own.join('\n')}
# Any service can tell the whole deployment's readiness (each knows the others' URLs); one that does not answer is skipped.
${any}`;
}

const CLIENT_LIMITS = `  listen \${GATEWAY_LISTEN};
  server_tokens off;
  client_max_body_size 1m;
  # Bodies and responses stay in memory: no temporary files (a non-root
  # worker may not be able to write them, and they are slow anyway).
  client_body_buffer_size 1m;
  proxy_max_temp_file_size 0;
  # Slow clients (slow-loris) are cut off; the services have the same deadlines of their own.
  client_header_timeout 10s;
  client_body_timeout 10s;
  send_timeout 10s;
  keepalive_timeout 15s;`;

/** The gateway's own refusals, as problem documents. */
function problemPages(): string {
  const json = 'application/problem+json';
  return `  # The gateway's own refusals are problem documents too, never nginx's HTML pages.
  error_page 413 = @too_large;
  error_page 502 503 504 = @unavailable;
  error_page 500 = @gateway_error;
  # A request nginx cannot read (a NUL in the path...) is answered from a fixed URI of its own.
  error_page 400 /__toko_bad_request;
  # A path nginx refuses itself (an internal location asked from outside) is the same 404 as any unknown path.
  error_page 404 = @not_found;
${ownAnswer('@not_found', 404, json, NOT_FOUND)}
${ownAnswer('= /__toko_bad_request', 400, json, problem(400, 'REQUEST.BAD', 'Bad request', 'The gateway could not read this request'), ['internal;'])}
${ownAnswer('@gateway_error', 500, json, problem(500, 'SERVER.INTERNAL', 'Internal server error', 'The gateway could not handle the request'))}
${ownAnswer('@too_large', 413, json, problem(413, 'REQUEST.TOO_LARGE', 'Payload too large', 'The request body is too large'))}
  # Methods the API never serves (TRACE, PROPFIND, ...) are refused here, as the services refuse them.
  error_page 405 = @not_allowed;
  if ($request_method !~ ^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$) { return 405; }
${ownAnswer('@not_allowed', 405, json, problem(405, 'HTTP.METHOD_NOT_ALLOWED', 'Method not allowed', 'This method is not served here'), ['add_header Allow "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" always;'])}
${ownAnswer('@unavailable', 503, json, problem(503, 'SERVICE.UNAVAILABLE', 'Service unavailable', 'The service behind this route is not answering; try again shortly'), ['add_header Retry-After 5 always;'])}`;
}

/** How many replicas the gateway asks, at most, for one request (`proxy_next_upstream_tries`). */
export const NEXT_UPSTREAM_TRIES = 3;

const PROXY_DEFAULTS = `  proxy_http_version 1.1;
  proxy_set_header Connection "";
  # The Host the client sent, port included: Bull Board compares it with the Origin of a change.
  proxy_set_header Host $http_host;
  # The client's address as this gateway saw it; whatever X-Forwarded-For the client sent is dropped, never passed on.
  proxy_set_header X-Forwarded-For $remote_addr;
  proxy_set_header X-Forwarded-Proto $scheme;
  proxy_connect_timeout 1s;
  proxy_read_timeout 30s;
  # A request a replica refused, did not answer in time, or answered 502/503 (draining) goes to the next replica:
  # GET, HEAD, PUT, DELETE, OPTIONS always; POST and PATCH only when they never reached a replica (no
  # non_idempotent here), except a POST whose Idempotency-Key the route honours (the keyed locations below).
  proxy_next_upstream error timeout http_502 http_503;
  proxy_next_upstream_tries ${NEXT_UPSTREAM_TRIES};`;

const INTERNAL = `  # Service-to-service calls never pass through the gateway.
${ownAnswer('/internal/', 404, 'application/problem+json', NOT_FOUND)}`;

/** The gateway's own liveness, the whole deployment's readiness, and each module's. */
function healthLocations(): string {
  const health = MODULE_NAMES.map((m) => `  location = /health/${m} { proxy_pass http://toko_${m}/health/ready; }`);
  return `${ownAnswer('= /health', 200, 'application/json', `'{"status":"ok","gateway":"nginx"}'`)}
  # Every service ready, or 503 naming the modules that are not.
  location = /health/ready { proxy_pass http://toko_any/health/system; proxy_next_upstream error timeout http_502; proxy_next_upstream_tries ${MODULE_NAMES.length}; proxy_read_timeout 5s; }
${health.join('\n')}`;
}

/**
 * How long the gateway waits for a replica's answer to a GET or HEAD before it
 * asks the next replica (other methods wait PROXY_DEFAULTS' 30 s and are never
 * sent twice). A replica cut off from the network then holds a read for this
 * long, not until its link returns.
 */
export const GET_READ_TIMEOUT = '1s';

/**
 * How long, from its arrival, a GET or HEAD may still be passed on to another replica: twice
 * GET_READ_TIMEOUT, so a read no replica answers in time is asked of two at most (a failed connection is
 * still retried at once, up to the gateway's tries), and its client waits about 2 s for the 503, not one
 * read timeout per try. It bounds the load a slow store adds: each slow read is sent twice, not three times.
 */
export const GET_RETRY_WINDOW = '2s';

/** Where a module's GETs and HEADs are sent on to, inside the gateway (never reachable from outside it). */
export const readPath = (m: ModuleName) => `/__toko_read/${m}`;

/** Where a module's keyed writes are sent on to, inside the gateway (never reachable from outside it). */
export const keyedPath = (m: ModuleName) => `/__toko_keyed/${m}`;

/**
 * The POST routes that honour an `Idempotency-Key` (one outcome per key and
 * user, a duplicate waiting for the first), as exact paths, per module: the
 * only writes the gateway may send to a second replica after the first
 * failed with the request already sent. A keyed route with a parameter in its
 * path would need a location nginx cannot write as an exact path: refused here.
 */
export function keyedWrites(m: ModuleName): string[] {
  const keyed = definition(m).routes.filter(
    (r) => r.method.toUpperCase() === 'POST' && r.headers?.shape?.['idempotency-key'],
  );
  for (const r of keyed)
    if (r.path.includes('/:'))
      throw new Error(`${m}: keyed route ${r.path} has a parameter; the gateway cannot retry it`);
  return keyed.map((r) => r.path).sort();
}

/**
 * `$toko_keyed` is 1 for a POST that carries an Idempotency-Key the service
 * accepts (1-255 visible ASCII characters, as the route's schema says). On a
 * route that honours the key (keyedWrites), such a POST goes through a
 * location that may send it to the next replica after the first failed with
 * the request already sent: a connection reset (a replica killed, or one whose
 * closing listener reset a connection it had not accepted yet) or no answer.
 * The service answers a key whose first attempt finished with that outcome,
 * and one still in flight with a wait (up to 10 s) then 409, so one order is
 * placed, never two. An answer (a 503 included) is passed on, never resent:
 * the replica that gave it may have left the key in flight, and the next one
 * would only wait 10 s to say 409.
 */
const KEYED_MAP = `# A POST with an Idempotency-Key: retried on the next replica, on the routes that honour the key (the keyed locations below).
map "$request_method:$http_idempotency_key" $toko_keyed { "~^POST:[!-~]{1,255}$" 1; default 0; }`;

/**
 * Each module's public route prefixes, to its service; its GETs and HEADs go
 * through an internal location of their own with the short read timeout, and
 * a keyed POST to a route that honours its key through another (KEYED_MAP).
 * `$request_uri` is the path and query exactly as the client sent them, as a
 * `proxy_pass` without a URI passes them (the rewrite changes only which
 * location handles the request).
 */
function moduleLocations(): string {
  const routes = MODULE_NAMES.flatMap((m) =>
    routePrefixes(m).map(
      (p) =>
        `  location ${p} { if ($request_method ~ ^(GET|HEAD)$) { rewrite ^ ${readPath(m)} last; } proxy_pass http://toko_${m}; }`,
    ),
  );
  const reads = MODULE_NAMES.map(
    (m) =>
      `  location = ${readPath(m)} { internal; proxy_read_timeout ${GET_READ_TIMEOUT}; proxy_next_upstream_timeout ${GET_RETRY_WINDOW}; proxy_pass http://toko_${m}$request_uri; }`,
  );
  // The exact path and the same with a trailing slash, which the router serves alike.
  const keyed = MODULE_NAMES.flatMap((m) =>
    keyedWrites(m)
      .flatMap((p) => [p, `${p}/`])
      .map(
        (p) =>
          `  location = ${p} { if ($request_method ~ ^(GET|HEAD)$) { rewrite ^ ${readPath(m)} last; } if ($toko_keyed) { rewrite ^ ${keyedPath(m)} last; } proxy_pass http://toko_${m}; }`,
      ),
  );
  const keyedTargets = MODULE_NAMES.filter((m) => keyedWrites(m).length).map(
    (m) =>
      `  location = ${keyedPath(m)} { internal; proxy_next_upstream error timeout non_idempotent; proxy_pass http://toko_${m}$request_uri; }`,
  );
  return `  # Each module's public routes, from its definition. A GET or HEAD is answered within ${GET_READ_TIMEOUT} or
  # asked of the next replica (proxy_next_upstream above), from a location of its own; other methods wait 30 s.
${routes.join('\n')}
${reads.join('\n')}
  # A POST with an Idempotency-Key to a route that honours it may go to the next replica even after it was sent.
${keyed.join('\n')}
${keyedTargets.join('\n')}`;
}

/** The API's documents and Bull Board, which every service serves: the token issuer's answers. */
function documentLocations(): string {
  const docs = DOC_ROUTES.map((d) => `  location = ${d.path} { proxy_pass http://toko_${TOKEN_ISSUER}; }`);
  return `  # Every service serves the whole API's documents and Bull Board (every queue); the ${TOKEN_ISSUER} service answers here.
${docs.join('\n')}
  location /docs/assets/ { proxy_pass http://toko_${TOKEN_ISSUER}; }
  location ${QUEUES_PATH} { proxy_pass http://toko_${TOKEN_ISSUER}; }`;
}

export function renderGatewayTemplate(): string {
  const server = [
    CLIENT_LIMITS,
    problemPages(),
    PROXY_DEFAULTS,
    INTERNAL,
    healthLocations(),
    moduleLocations(),
    documentLocations(),
    ownAnswer('/', 404, 'application/problem+json', NOT_FOUND),
  ];
  return `${HEADER}\n\n${upstreams()}\n${KEYED_MAP}\n\nserver {\n${server.join('\n\n')}\n}\n`;
}
