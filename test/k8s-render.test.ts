import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, type Dirent } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderGatewayTemplate } from '../scripts/generate/nginx.ts';
import { K8S_DIR, renderKubernetes, TOPOLOGIES } from '../scripts/k8s/index.ts';
import { MODULE_NAMES } from '../src/registry.ts';
import { findKubectl, render, schemaProblems, typeProblems, type K8sObject } from './helpers/k8s.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const OVERLAYS = TOPOLOGIES.map((t) => t.overlay);
const FIXTURES = 'test/fixtures/k8s';
const kubectl = findKubectl();
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
