import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, type Dirent } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderGatewayTemplate } from '../scripts/generate/nginx.ts';
import { K8S_DIR, renderKubernetes, TOPOLOGIES } from '../scripts/k8s/index.ts';
import { MODULE_NAMES } from '../src/registry.ts';
import { findKubectl, render, schemaProblems, typeProblems, type K8sObject } from './helpers/k8s.ts';
import { freePorts, waitFor } from './helpers/wait.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const OVERLAYS = TOPOLOGIES.map((t) => t.overlay);
const FIXTURES = 'test/fixtures/k8s';
const kubectl = findKubectl();
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
if (!kubectl) console.warn('Kubernetes render checks skipped: kubectl is not installed (under CI it is an error)');

const rendered = new Map<string, K8sObject[]>();
const overlay = (name: string) => {
  if (!rendered.has(name)) rendered.set(name, render(`${K8S_DIR}/overlays/${name}`));
  return rendered.get(name)!;
};

describe('deploy/k8s', () => {
  it('holds exactly the files npm run generate writes (none left over from a module or overlay gone)', () => {
    const onDisk = (readdirSync(path.join(ROOT, K8S_DIR), { recursive: true, withFileTypes: true }) as Dirent[])
      .filter((e) => e.isFile())
      .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)))
      .sort();
    expect(onDisk).toEqual(Object.keys(renderKubernetes(renderGatewayTemplate())).sort());
  });
});

describe.skipIf(!kubectl)('kubectl kustomize', () => {
  it.each(OVERLAYS)(
    'renders the %s overlay: a Deployment and a Service per host, the gateway, the policies',
    (name) => {
      const objects = overlay(name);
      const topology = TOPOLOGIES.find((t) => t.overlay === name)!;
      const names = (kind: string) => objects.filter((o) => o.kind === kind).map((o) => o.metadata.name);
      expect(names('Deployment').sort()).toEqual([...topology.hosts.map((h) => h.name), 'toko-gateway'].sort());
      expect(names('Service')).toEqual(expect.arrayContaining([...topology.hosts.map((h) => h.name), 'toko-gateway']));
      expect(names('NetworkPolicy')).toContain('toko-default-deny');
      expect(names('ServiceMonitor').sort()).toEqual(
        topology.monitoring ? topology.hosts.map((h) => h.name).sort() : [],
      );
      expect(names('PrometheusRule')).toEqual(topology.monitoring ? ['toko'] : []);
      expect(names('Secret'), 'secrets are made by the operator, never shipped').toEqual([]);
      for (const o of objects.filter((x) => x.kind !== 'Namespace'))
        expect(o.metadata.namespace, o.metadata.name).toBe('toko');
    },
  );

  it('fails loudly on a kustomization it cannot build (fixture: a resource that does not exist)', () => {
    expect(() => render(`${FIXTURES}/broken`)).toThrow(/kubectl kustomize .*broken failed: .*no-such-file\.yaml/s);
  });
});

describe.skipIf(!kubectl)('the Kubernetes schema', () => {
  it.each(OVERLAYS)('accepts every object of the %s overlay', (name) => {
    expect(schemaProblems(overlay(name))).toEqual([]);
  });

  it('refuses a wrong type (fixture: a container port given as text)', () => {
    expect(schemaProblems(render(`${FIXTURES}/schema-wrong-type`))).toEqual([
      expect.stringMatching(/^Deployment toko-order: .*containerPort must be integer/),
    ]);
  });

  it('has a schema for every kind the overlays use, and says so for one it has not', () => {
    const stray = { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } };
    expect(schemaProblems([stray])).toEqual(['Widget w: no schema for example.com/v1 Widget']);
  });
});

describe.skipIf(!kubectl)('unknown and misspelled fields (typed check)', () => {
  it('finds none in any overlay', () => {
    // One program for the three overlays: compiling is the slow part.
    const all = OVERLAYS.flatMap((name) => overlay(name));
    expect(typeProblems(all)).toEqual([]);
  });

  it('names a misspelled field the schema lets through (fixture: readinesProbe, and a typo in a ServiceMonitor)', () => {
    const objects = render(`${FIXTURES}/typed-misspelled`);
    expect(schemaProblems(objects), 'the schema alone does not see it').toEqual([]);
    const problems = typeProblems(objects);
    expect(problems).toContainEqual(
      expect.stringMatching(/^Deployment toko-user: .*'"readinesProbe"' does not exist in type 'Container'/),
    );
    expect(problems).toContainEqual(expect.stringMatching(/^ServiceMonitor toko-user: .*'"intervall"' does not exist/));
    expect(problems).toHaveLength(2);
  });
});

describe.skipIf(!kubectl)('the gateway config in each overlay', () => {
  const nginx = spawnSync('nginx', ['-v']).status === 0 ? 'nginx' : undefined;
  it.skipIf(!nginx && !process.env.CI).each(OVERLAYS)('is one nginx accepts (%s)', (name) => {
    const conf = overlay(name).find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('toko-gateway-nginx'))!;
    const dir = mkdtempSync(path.join(tmpdir(), 'toko-k8s-nginx-'));
    try {
      // The Services' names resolve only in the cluster: loopback stands in for them.
      const text = (conf.data as Record<string, string>)['default.conf']!.replace(
        /server toko[a-z-]*:/g,
        'server 127.0.0.1:',
      );
      writeFileSync(path.join(dir, 'default.conf'), text);
      writeFileSync(
        path.join(dir, 'nginx.conf'),
        `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\nhttp { access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir}; include ${dir}/default.conf; }\n`,
      );
      const check = spawnSync('nginx', ['-t', '-q', '-p', dir, '-c', path.join(dir, 'nginx.conf')], {
        encoding: 'utf8',
      });
      expect(check.stderr).toBe('');
      expect(check.status).toBe(0);
      for (const m of MODULE_NAMES) expect(text).toContain(`upstream toko_${m} {`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * `/internal` is for service-to-service calls only (issue 25): the gateway of
 * every overlay, run by nginx on loopback with every Service replaced by one
 * recording server, answers any `/internal/...` path with its own 404 and
 * passes none of them on.
 */
describe.skipIf(!kubectl || !has('nginx'))('the gateway of each overlay and /internal', () => {
  const PATHS = [
    '/internal/',
    ...MODULE_NAMES.map((m) => `/internal/v1/${m}/get`),
    '/%69nternal/v1/user/get',
    '/api/v1/users/../../internal/v1/user/get',
    '//internal/v1/order/get',
  ];

  /** Starts nginx on the overlay's gateway config (as `edit` leaves it); answers each of PATHS, and what reached a Service. */
  async function ask(name: string, edit: (conf: string) => string = (c) => c) {
    const seen: string[] = [];
    return withGateway(
      edit(gatewayConfOf(name)),
      (req, res) => {
        seen.push(req.url ?? '');
        res.end('a service answered');
      },
      async (port) => {
        const answers: Record<string, number> = {};
        for (const p of PATHS) answers[p] = await statusOf(port, p);
        return { answers, seen };
      },
    );
  }

  it.each(OVERLAYS)('answers /internal/... with 404 and passes none on (%s)', async (name) => {
    const { answers, seen } = await ask(name);
    expect(answers).toEqual(Object.fromEntries(PATHS.map((p) => [p, 404])));
    expect(seen).toEqual([]);
  });

  it('sees a gateway that routes /internal to a service (fault)', async () => {
    const { answers, seen } = await ask('split', (conf) =>
      conf.replace(
        /location \/internal\/ \{\n[\s\S]*?\n {2}\}\n/,
        'location /internal/ { proxy_pass http://toko_user; }\n',
      ),
    );
    expect(answers['/internal/v1/user/get']).toBe(200);
    expect(seen).toContain('/internal/v1/user/get');
  });
});

/**
 * A Service is one address (its ClusterIP), and a pod behind it can die holding a request (kill -9, a node
 * lost); the next connection to the Service reaches another pod. The gateway of each overlay, run by nginx on
 * loopback with every Service replaced by one server that drops the first attempt of each request it sees (the
 * pod lost mid-request) and answers the next (another pod): a GET and an order with an Idempotency-Key are
 * asked again and answered; an order without a key is never sent twice.
 */
describe.skipIf(!kubectl || !has('nginx'))('the gateway of each overlay and a pod lost mid-request', () => {
  const ORDER = '/api/v1/orders';

  async function lose(conf: string) {
    const seen: Record<string, number> = {};
    return withGateway(
      conf,
      (req, res) => {
        const key = `${req.method} ${req.url} ${req.headers['idempotency-key'] ?? ''}`;
        seen[key] = (seen[key] ?? 0) + 1;
        // A new connection per attempt, as after a pod's loss: no kept-alive connection to fall back on.
        res.setHeader('connection', 'close');
        if (seen[key] === 1) req.socket.destroy();
        else res.end('{}');
      },
      async (port) => {
        const url = `http://127.0.0.1:${port}`;
        const post = (headers: Record<string, string>) =>
          fetch(`${url}${ORDER}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...headers },
            body: '{"items":[]}',
          }).then((r) => r.status);
        return {
          get: (await fetch(`${url}/api/v1/products/p1`)).status,
          keyed: await post({ 'idempotency-key': 'order-1' }),
          unkeyed: await post({}),
          seen,
        };
      },
    );
  }

  it.each(OVERLAYS)('asks a GET and a keyed order again, never an order without a key (%s)', async (name) => {
    const r = await lose(gatewayConfOf(name));
    expect({ get: r.get, keyed: r.keyed }).toEqual({ get: 200, keyed: 200 });
    expect(r.unkeyed).toBe(503);
    expect(r.seen).toEqual({
      'GET /api/v1/products/p1 ': 2,
      [`POST ${ORDER} order-1`]: 2,
      [`POST ${ORDER} `]: 1,
    });
  });

  it('asks a GET no pod answers in time of two attempts at most, not one per entry', async () => {
    const seen: string[] = [];
    const status = await withGateway(
      gatewayConfOf('split'),
      (req, res) => {
        seen.push(`${req.method} ${req.url}`);
        setTimeout(() => res.end('{}'), 1_500).unref(); // later than the gateway's read timeout (1 s)
      },
      async (port) => (await fetch(`http://127.0.0.1:${port}/api/v1/products/slow`)).status,
    );
    expect(status).toBe(503);
    expect(seen).toEqual(['GET /api/v1/products/slow', 'GET /api/v1/products/slow']);
  });

  it('sees a gateway that lists each Service once (fault): the GET is lost with the pod', async () => {
    const single = gatewayConfOf('split').replace(
      /(server (toko[a-z-]*:\d+) max_fails=0; )(?:server \2 max_fails=0; )+/g,
      '$1',
    );
    expect(single).not.toMatch(/(server toko-product:3000 max_fails=0; ){2}/);
    const r = await lose(single);
    expect(r.get).toBe(503);
    expect(r.seen['GET /api/v1/products/p1 ']).toBe(1);
  });
});

/** The gateway config of an overlay, as its ConfigMap holds it. */
function gatewayConfOf(name: string): string {
  const conf = overlay(name).find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('toko-gateway-nginx'))!;
  return (conf.data as Record<string, string>)['default.conf']!;
}

/**
 * Runs nginx on loopback with `conf` (a gateway config as an overlay holds it), every Service replaced by one
 * server answering with `handler`, and gives `use` the gateway's port.
 */
async function withGateway<T>(
  conf: string,
  handler: Parameters<typeof createServer>[1],
  use: (port: number) => Promise<T>,
): Promise<T> {
  const backend = createServer(handler);
  const [backendPort, gatewayPort] = (await freePorts(2)) as [number, number];
  await new Promise<void>((resolve) => backend.listen(backendPort, '127.0.0.1', resolve));
  const dir = mkdtempSync(path.join(tmpdir(), 'toko-k8s-gateway-'));
  const text = conf
    .replace(/server toko[a-z-]*:\d+/g, `server 127.0.0.1:${backendPort}`)
    .replace(/listen \d+;/, `listen 127.0.0.1:${gatewayPort};`);
  writeFileSync(path.join(dir, 'default.conf'), text);
  writeFileSync(
    path.join(dir, 'nginx.conf'),
    `daemon off;\nworker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\nhttp { access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir}; include ${dir}/default.conf; }\n`,
  );
  const nginx = spawn('nginx', ['-e', `${dir}/error.log`, '-p', dir, '-c', path.join(dir, 'nginx.conf')], {
    stdio: 'ignore',
  });
  try {
    await waitFor(
      'the gateway to answer',
      async () => (await fetch(`http://127.0.0.1:${gatewayPort}/health`).catch(() => undefined))?.ok || undefined,
      10_000,
      50,
    );
    return await use(gatewayPort);
  } finally {
    if (nginx.exitCode === null && nginx.signalCode === null) {
      const exited = once(nginx, 'exit');
      nginx.kill('SIGTERM');
      await exited;
    }
    backend.closeAllConnections();
    backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The status of a GET of `rawPath` exactly as written (fetch would normalise `..` and `//` first). */
function statusOf(port: number, rawPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: rawPath, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}
