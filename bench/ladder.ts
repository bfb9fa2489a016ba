/**
 * The ladder: from bare Koa to toko's whole kernel, one layer at a time, in
 * the order createApp runs them. Every rung is a tiny app built from the real
 * middleware functions of src/http (and the top rung is createApp itself), so
 * the ladder measures the code that serves requests, not a copy of it. No rung
 * touches a database: the handler answers a fixed user, like a cache hit.
 *
 * `node --import tsx bench/ladder.ts` with LADDER_RUNG, PORT and the key pair
 * (LADDER_PRIVATE_KEY, LADDER_PUBLIC_KEY) serves one rung; SIGTERM ends it
 * cleanly (so `--cpu-prof` writes its profile).
 */
import { generateKeyPairSync } from 'node:crypto';
import Koa, { type Context, type Middleware, type Next } from 'koa';
import type { Logger } from 'pino';
import { z } from 'zod';
import { requestContext } from '../kit/request-context.ts';
import type { AnyRouteDef } from '../kit/route.ts';
import { createApp } from '../src/app.ts';
import { loadSigningKeys } from '../src/auth/keys.ts';
import { createTokenIssuer, createTokenVerifier, type TokenVerifier } from '../src/auth/tokens.ts';
import { authorize } from '../src/http/auth.ts';
import { jsonBody } from '../src/http/body.ts';
import { clientAddresses } from '../src/http/client-address.ts';
import { corsAllowList } from '../src/http/cors.ts';
import { requestEnvelope } from '../src/http/envelope.ts';
import { createMetrics, type Metrics } from '../src/http/metrics.ts';
import { answerWithProblem, unanswered } from '../src/http/problem.ts';
import { requestIdFrom } from '../src/http/request-id.ts';
import { requestLines } from '../src/http/request-log.ts';
import { moduleOf, routeLabel } from '../src/http/route-label.ts';
import { parseInput } from '../src/http/routes.ts';
import { Router } from '../src/http/router.ts';
import { securityHeaders } from '../src/http/security-headers.ts';
import { createLogger } from '../src/logger.ts';

export const LADDER_PATH = '/api/v1/users/me';
export const LADDER_ORIGIN = 'https://shop.example.com';
const ISSUER = 'toko';
const AUDIENCE = 'toko-api';

/** The rungs, bottom to top; each adds one layer to the one before. `node:http` is bench/ceiling.ts. */
export const RUNGS = [
  'koa',
  'client address',
  'envelope: problems',
  'envelope: request id and context',
  'envelope: log line',
  'envelope: metrics',
  'security headers',
  'CORS',
  'body parser',
  'routing',
  'auth',
  'validation',
  'createApp (serialisation)',
] as const;
export type Rung = (typeof RUNGS)[number];

const USER = {
  id: '0b0c6c1e-6f43-4a57-9b0b-7c1a4f7d2e11',
  email: 'ladder@example.com',
  username: 'ladder',
  fullName: 'Ladder Rung',
  role: 'customer',
  isActive: true,
  isVerified: false,
  createdAt: '2026-12-05T00:00:00.000Z',
};

/** The route every rung from `routing` up serves: GET /users/me's shape, answering a fixed user. */
export const LADDER_ROUTE: AnyRouteDef = {
  method: 'get',
  operationId: 'ladderMe',
  path: LADDER_PATH,
  summary: 'The ladder’s route',
  access: 'user',
  response: z
    .object({
      id: z.string(),
      email: z.string(),
      username: z.string(),
      fullName: z.string(),
      role: z.string(),
      isActive: z.boolean(),
      isVerified: z.boolean(),
      createdAt: z.string(),
    })
    .strict(),
  handler: async () => USER,
};

export interface LadderDeps {
  logger: Logger;
  metrics: Metrics;
  verify: TokenVerifier;
}

/** The envelope's parts, as requestEnvelope runs them, up to `upTo` (the last part is requestEnvelope itself). */
function partialEnvelope(deps: LadderDeps, upTo: 'problems' | 'context' | 'log'): Middleware {
  const log = requestLines(deps.logger);
  return async function requestEnvelope(ctx: Context, next: Next) {
    const started = performance.now();
    let requestId = '';
    if (upTo !== 'problems') {
      requestId = requestIdFrom(ctx.req.headers['x-request-id']);
      ctx.state.requestId = requestId;
      ctx.set('x-request-id', requestId);
    }
    try {
      if (upTo === 'problems') await next();
      else await requestContext.run({ requestId }, next);
      const error = unanswered(ctx);
      if (error) answerWithProblem(ctx, error, deps.logger);
    } catch (err) {
      answerWithProblem(ctx, err, deps.logger);
    } finally {
      if (upTo === 'log') {
        const ms = performance.now() - started;
        const route = routeLabel(ctx);
        log({ requestId, module: moduleOf(route), method: ctx.method, route, status: ctx.status, ms });
      }
    }
  };
}

/** The route's handler as mountRoutes' `handle` runs it, up to `upTo` (serialisation is mountRoutes itself). */
function handlerUpTo(deps: LadderDeps, upTo: 'routing' | 'auth' | 'validation'): Router {
  const router = new Router();
  router.get(LADDER_PATH, async function handle(ctx: Context) {
    if (upTo !== 'routing') await authorize(ctx, 'user', deps.verify);
    if (upTo === 'validation') parseInput(ctx, LADDER_ROUTE);
    ctx.body = await LADDER_ROUTE.handler({} as never, undefined);
  });
  return router;
}

const plainAnswer: Middleware = function answer(ctx) {
  ctx.body = USER;
};

/** The middleware stack of a rung below createApp, in createApp's order. */
export function rungMiddleware(rung: Exclude<Rung, 'createApp (serialisation)'>, deps: LadderDeps): Middleware[] {
  const level = RUNGS.indexOf(rung);
  const has = (r: Rung) => level >= RUNGS.indexOf(r);
  const stack: Middleware[] = [];
  if (has('client address')) stack.push(clientAddresses({ trustedProxies: [] }));
  if (has('envelope: metrics')) stack.push(requestEnvelope({ logger: deps.logger, metrics: deps.metrics }));
  else if (has('envelope: log line')) stack.push(partialEnvelope(deps, 'log'));
  else if (has('envelope: request id and context')) stack.push(partialEnvelope(deps, 'context'));
  else if (has('envelope: problems')) stack.push(partialEnvelope(deps, 'problems'));
  if (has('security headers')) stack.push(securityHeaders());
  if (has('CORS')) stack.push(corsAllowList({ origins: [LADDER_ORIGIN] }));
  if (has('body parser')) stack.push(jsonBody({ limit: '100kb' }));
  if (has('validation')) stack.push(handlerUpTo(deps, 'validation').middleware());
  else if (has('auth')) stack.push(handlerUpTo(deps, 'auth').middleware());
  else if (has('routing')) stack.push(handlerUpTo(deps, 'routing').middleware());
  else stack.push(plainAnswer);
  return stack;
}

/** The Koa app of one rung; the top rung is createApp with the ladder's route and nothing else. */
export function rungApp(rung: Rung, deps: LadderDeps): Koa {
  if (rung === 'createApp (serialisation)') {
    return createApp({
      ...deps,
      routes: [{ def: LADDER_ROUTE, runtime: undefined }],
      documentedRoutes: [LADDER_ROUTE],
      corsOrigins: [LADDER_ORIGIN],
      bodyLimit: '100kb',
      trustedProxies: [],
      metricsAccess: { onPublicPort: true },
      version: 'ladder',
    }).app;
  }
  const app = new Koa({ proxy: false });
  app.silent = true;
  for (const m of rungMiddleware(rung, deps)) app.use(m);
  return app;
}

/** A key pair for the rungs' tokens (the bench passes it to every rung's process). */
export function ladderKeys(): { privateKey: string; publicKey: string } {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
}

/** A customer's token the rungs accept. */
export function ladderToken(keys: { privateKey: string; publicKey: string }): string {
  const signing = loadSigningKeys({ ...keys, dataDir: '/nonexistent' });
  return createTokenIssuer({ keys: signing, issuer: ISSUER, audience: AUDIENCE, ttlSeconds: 3600 }).issue({
    id: USER.id,
    role: 'customer',
  }).accessToken;
}

/** What the rungs share: an info-level logger to stdout (as toko's), a metrics registry, a token verifier. */
export function ladderDeps(publicKey: string, logger = createLogger({ level: 'info' })): LadderDeps {
  return {
    logger,
    metrics: createMetrics({ service: 'ladder' }),
    verify: createTokenVerifier({ publicKey, issuer: ISSUER, audience: AUDIENCE }),
  };
}

if (process.argv[1] === import.meta.filename) {
  const rung = process.env.LADDER_RUNG as Rung;
  if (!RUNGS.includes(rung)) throw new Error(`LADDER_RUNG must be one of ${RUNGS.join(', ')}`);
  const server = rungApp(rung, ladderDeps(process.env.LADDER_PUBLIC_KEY!)).listen(
    Number(process.env.PORT),
    '127.0.0.1',
  );
  // A clean exit, so that `--cpu-prof` writes its profile.
  process.once('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
