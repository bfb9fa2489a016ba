import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { api, newUser } from './helpers/http.ts';
import { waitFor } from './helpers/wait.ts';
import { LOOP_LAG_SAMPLE_MS } from '../src/http/metrics.ts';
import { QUEUES_ROUTE_LABEL } from '../src/http/route-label.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

interface Panel {
  title: string;
  description?: string;
  targets?: { expr: string }[];
}
const dashboard = JSON.parse(read('monitoring/grafana/dashboards/toko.json')) as {
  panels: Panel[];
  templating: { list: { query: { query: string } }[] };
};

const NOT_METRICS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'offset',
  'bool',
  'le',
]);

/** The metric names a PromQL expression reads: label matchers, ranges, grouping clauses and functions taken out. */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"[^"]*"/g, '')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, ' ')
    .replace(/label_values\(\s*([a-zA-Z_:][\w:]*)\s*,[^)]*\)/g, ' $1 ');
  return [...bare.matchAll(/([a-zA-Z_:][\w:]*)(\s*\()?/g)]
    .filter((m) => !m[2] && !NOT_METRICS.has(m[1]!))
    .map((m) => m[1]!);
}

/** Every name a scrape can return: declared families, plus the series names of histograms and summaries. */
function exported(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_count', '_sum']) names.add(name + s);
    if (type === 'summary') for (const s of ['_count', '_sum']) names.add(name + s);
  }
  return names;
}

let app: TestApp;
const http = api(() => app.url);

beforeAll(async () => {
  app = await startTestApp({ ADMIN_EMAIL: 'boss@toko.test', ADMIN_PASSWORD: 'boss-password-123' });
}, 60_000);
afterAll(() => app?.close());

describe('the Grafana dashboard', () => {
  it('queries only metrics a running toko process exports', async () => {
    const exprs = [
      ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
      ...dashboard.templating.list.map((v) => v.query.query),
    ];
    const wanted = new Set(exprs.flatMap(metricNames));
    expect(wanted.size).toBeGreaterThan(10);
    const scrape = await http.get('/metrics');
    expect(scrape.status).toBe(200);
    const have = exported(scrape.text);
    const missing = [...wanted].filter((n) => !have.has(n));
    console.info(
      `dashboard: ${dashboard.panels.length} panels, ${wanted.size} metric names, missing ${missing.length}`,
    );
    expect(missing).toEqual([]);
  });

  it('splits the route panels by method and leaves Bull Board and the metrics scrapes out of them', () => {
    const byRoute = dashboard.panels.filter((p) => (p.targets ?? []).some((t) => /\bby \([^)]*\broute\b/.test(t.expr)));
    expect(byRoute.map((p) => p.title)).toEqual(
      expect.arrayContaining(['Request rate by route', 'Latency p99 by route']),
    );
    for (const p of byRoute) {
      for (const t of p.targets!) {
        expect(t.expr, p.title).toMatch(/\bby \([^)]*\bmethod\b[^)]*\)/);
        expect(t.expr, p.title).toContain(`route!~"${QUEUES_ROUTE_LABEL.replace('*', '.*')}|/metrics"`);
      }
    }
  });

  it('has a title and a description for every panel (docs/observability.md explains each)', () => {
    const docs = read('docs/observability.md');
    for (const p of dashboard.panels) {
      expect(p.description, p.title).toBeTruthy();
      expect(docs, `docs/observability.md names the panel "${p.title}"`).toContain(p.title);
    }
  });

  it('docs/observability.md says how often the event-loop lag is sampled, and that its figures include the period', async () => {
    const row = /^\| Event loop lag \|.*$/m.exec(read('docs/observability.md'))?.[0] ?? '';
    expect(Number(/sampled every (\d+) ms/.exec(row)?.[1])).toBe(LOOP_LAG_SAMPLE_MS);
    expect(row).toContain(`idle process reads about ${LOOP_LAG_SAMPLE_MS} ms`);
    await http.get('/metrics');
    await sleep(LOOP_LAG_SAMPLE_MS * 10);
    // No sample is far short of the period (the timer rounds to whole ms): the figures hold it, an idle loop's too.
    const min = Number(
      /^nodejs_eventloop_lag_min_seconds\{[^}]*\} (\S+)$/m.exec((await http.get('/metrics')).text)?.[1],
    );
    expect(min).toBeGreaterThanOrEqual(LOOP_LAG_SAMPLE_MS / 2 / 1000);
  });

  it('reads series the shop produces: orders by outcome, reservations, events handled, sends, pool and outbox', async () => {
    const admin = (
      await http.post<{ accessToken: string }>('/api/v1/users/login', {
        email: 'boss@toko.test',
        password: 'boss-password-123',
      })
    ).body.accessToken;
    const product = await http.post<{ id: string }>(
      '/api/v1/products',
      { name: 'Teh Melati', price: 18_500, stock: 1, category: 'teh' },
      { token: admin },
    );
    expect(product.status).toBe(201);
    const user = newUser();
    await http.post('/api/v1/users/register', user);
    const token = (
      await http.post<{ accessToken: string }>('/api/v1/users/login', { email: user.email, password: user.password })
    ).body.accessToken;
    expect(
      (await http.post('/api/v1/orders', { items: [{ productId: product.body.id, quantity: 1 }] }, { token })).status,
    ).toBe(201);
    expect(
      (await http.post('/api/v1/orders', { items: [{ productId: product.body.id, quantity: 1 }] }, { token })).status,
    ).toBe(409);

    const line = (text: string, name: string, labels: Record<string, string>) =>
      text
        .split('\n')
        .find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
    const value = (l: string | undefined) => (l === undefined ? undefined : Number(l.split(' ').at(-1)));
    const text = await waitFor(
      'the confirmation to be sent',
      async () => {
        const t = (await http.get('/metrics')).text;
        return value(line(t, 'toko_notifications_sent_total', { transport: 'log', result: 'sent' })) === 2
          ? t
          : undefined;
      },
      10_000,
      50,
    );
    expect(value(line(text, 'toko_orders_total', { module: 'order', outcome: 'confirmed', reason: 'none' }))).toBe(1);
    expect(
      value(line(text, 'toko_orders_total', { module: 'order', outcome: 'rejected', reason: 'out_of_stock' })),
    ).toBe(1);
    expect(value(line(text, 'toko_stock_reservations_total', { module: 'product', result: 'reserved' }))).toBe(1);
    expect(value(line(text, 'toko_stock_reservations_total', { module: 'product', result: 'out_of_stock' }))).toBe(1);
    expect(
      value(line(text, 'toko_events_handled_total', { module: 'notification', type: 'order.confirmed', result: 'ok' })),
    ).toBe(1);
    expect(value(line(text, 'toko_db_pool_connections', { module: 'order', state: 'used' }))).toBeGreaterThanOrEqual(0);
    expect(value(line(text, 'toko_outbox_oldest_pending_age_seconds', { module: 'order' }))).toBeGreaterThanOrEqual(0);
    // Labels stay bounded: no id of a product, order or user in any series.
    for (const id of [product.body.id]) expect(text).not.toContain(id);
    expect(text).toMatch(
      /^http_request_duration_seconds_count\{service="toko",module="order",method="POST",route="\/api\/v1\/orders",status="201"\} 1$/m,
    );
  });
});

interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}
const alerts = (
  parse(read('monitoring/prometheus/alerts.yml')) as { groups: { name: string; rules: AlertRule[] }[] }
).groups.flatMap((g) => g.rules);

describe('the Prometheus alert rules', () => {
  it('cover dead events, the outbox age, an open breaker, the 5xx rate and p99, each with a severity and a summary', () => {
    const reads = (name: string) => alerts.filter((a) => metricNames(a.expr).includes(name)).map((a) => a.alert);
    for (const metric of [
      'toko_outbox_events',
      'toko_outbox_oldest_pending_age_seconds',
      'toko_circuit_breaker_state',
      'http_request_duration_seconds_count',
      'http_request_duration_seconds_bucket',
    ]) {
      expect(reads(metric), metric).not.toEqual([]);
    }
    expect(new Set(alerts.map((a) => a.alert)).size).toBe(alerts.length);
    for (const a of alerts) {
      expect(a.for, a.alert).toMatch(/^\d+[smh]$/);
      expect(['page', 'warn'], a.alert).toContain(a.labels.severity);
      expect(a.annotations.summary, a.alert).toBeTruthy();
    }
  });

  it('read only metrics a running toko process exports', async () => {
    const have = exported((await http.get('/metrics')).text);
    const missing = alerts.flatMap((a) =>
      metricNames(a.expr)
        .filter((n) => !have.has(n))
        .map((n) => `${a.alert}: ${n}`),
    );
    expect(missing).toEqual([]);
  });
});

describe('monitoring in the compose files', () => {
  for (const [file, monitoringFile, config] of [
    ['docker-compose.yml', 'docker-compose.monitoring.yml', 'monitoring/prometheus/single.yml'],
    ['docker-compose.split.yml', 'docker-compose.split.monitoring.yml', 'monitoring/prometheus/split.yml'],
  ] as const) {
    it(`${file} with ${monitoringFile}: Prometheus (scraping every toko service), Grafana and Jaeger`, () => {
      type Compose = {
        services: Record<
          string,
          {
            build?: unknown;
            profiles?: string[];
            volumes?: string[];
            ports?: string[];
            environment?: Record<string, string>;
          }
        >;
      };
      const compose = parse(read(file), { merge: true }) as Compose;
      const monitoring = parse(read(monitoringFile), { merge: true }) as Compose;
      // Prometheus scrapes each toko service on its METRICS_PORT, which the compose file never publishes.
      const tokoServices = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);
      for (const [n, svc] of tokoServices) {
        expect(svc.environment?.METRICS_PORT, `${n} has a metrics port`).toBeDefined();
        expect((svc.ports ?? []).join(' '), `${n} does not publish it`).not.toContain(
          String(svc.environment?.METRICS_PORT),
        );
      }
      const toko = tokoServices.map(([n, svc]) => `${n}:${svc.environment!.METRICS_PORT}`);
      for (const name of ['prometheus', 'grafana', 'jaeger'])
        expect(monitoring.services[name], `${monitoringFile}: ${name}`).toBeDefined();
      // Every mounted file or folder exists, and Prometheus gets the config of this topology.
      for (const s of ['prometheus', 'grafana']) {
        for (const v of monitoring.services[s]!.volumes!)
          expect(existsSync(path.join(ROOT, v.split(':')[0]!)), v).toBe(true);
      }
      expect(monitoring.services.prometheus!.volumes![0]).toContain(config);
      // The rule files Prometheus is told to load are mounted where it looks.
      const rules = (parse(read(config)) as { rule_files?: string[] }).rule_files ?? [];
      expect(rules).toEqual(['/etc/prometheus/alerts.yml']);
      expect(monitoring.services.prometheus!.volumes).toContain(
        './monitoring/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro',
      );
      const prom = parse(read(config)) as { scrape_configs: { static_configs: { targets: string[] }[] }[] };
      const targets = prom.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
      expect(targets.sort()).toEqual(toko.sort());
    });
  }
});
