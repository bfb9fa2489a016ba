import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Router } from './router.ts';
import { NotFound } from '../../kit/errors.ts';
import type { MetaRoute } from './openapi.ts';

const require = createRequire(import.meta.url);

/** Assets served from node_modules, so the docs work with no network. */
const ASSETS: Record<string, { file: () => string; type: string }> = {
  'swagger-ui.css': {
    file: () => path.join(path.dirname(require.resolve('swagger-ui-dist/package.json')), 'swagger-ui.css'),
    type: 'text/css',
  },
  'swagger-ui-bundle.js': {
    file: () => path.join(path.dirname(require.resolve('swagger-ui-dist/package.json')), 'swagger-ui-bundle.js'),
    type: 'application/javascript',
  },
  'redoc.standalone.js': {
    file: () => path.join(path.dirname(require.resolve('redoc/package.json')), 'bundles', 'redoc.standalone.js'),
    type: 'application/javascript',
  },
  'swagger-init.js': { file: () => '', type: 'application/javascript' },
};

/**
 * Redoc's bundle shows Redocly's logo from a CDN; the image is blanked (Redoc
 * hides an image that fails) so the page loads nothing from outside.
 */
const REDOC_CDN_LOGO = 'https://cdn.redoc.ly/redoc/logo-mini.svg';
const withoutOutsideLoads = (name: string, body: Buffer) =>
  name === 'redoc.standalone.js' ? Buffer.from(body.toString('utf8').replaceAll(REDOC_CDN_LOGO, 'data:,')) : body;

const SWAGGER_INIT = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true });
});`;

const SWAGGER_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>toko API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/swagger-init.js"></script></body></html>`;

const REDOC_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>toko API</title></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="/docs/assets/redoc.standalone.js"></script></body></html>`;

export const DOC_ROUTES: MetaRoute[] = [
  {
    method: 'get',
    path: '/openapi.json',
    operationId: 'getOpenApiDocument',
    summary: 'This OpenAPI 3.1 document',
    contentType: 'application/json',
  },
  { method: 'get', path: '/', operationId: 'getHome', summary: 'Redirects to /docs', contentType: 'text/html' },
  { method: 'get', path: '/docs', operationId: 'getSwaggerUi', summary: 'Swagger UI', contentType: 'text/html' },
  { method: 'get', path: '/redoc', operationId: 'getRedoc', summary: 'Redoc', contentType: 'text/html' },
];

/** `/openapi.json`, `/docs` (Swagger UI) and `/redoc`, assets read once and kept in memory. */
export function mountDocs(router: Router, document: () => unknown): void {
  const cache = new Map<string, Buffer>();
  router.get('/openapi.json', (ctx) => {
    ctx.body = document();
  });
  // README's first link is the bare address: it leads to the API docs rather than a 404.
  router.get('/', (ctx) => {
    ctx.redirect('/docs');
  });
  router.get('/docs', (ctx) => {
    ctx.type = 'text/html';
    ctx.body = SWAGGER_HTML;
  });
  router.get('/redoc', (ctx) => {
    ctx.type = 'text/html';
    ctx.body = REDOC_HTML;
  });
  router.get('/docs/assets/:file', (ctx) => {
    const name = ctx.params.file ?? '';
    const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (!asset) throw new NotFound('No such asset');
    let body = cache.get(name);
    if (!body) {
      body =
        name === 'swagger-init.js' ? Buffer.from(SWAGGER_INIT) : withoutOutsideLoads(name, readFileSync(asset.file()));
      cache.set(name, body);
    }
    ctx.type = asset.type;
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = body;
  });
}
