/**
 * Every file `npm run generate` writes, by its path from the repository root,
 * with the function that renders it. A new generated file is one line here
 * (or one spread of a renderer's own list); the drift test
 * (test/generated.test.ts) and `--check` read this list too.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CLIENT_SCHEMA, clientSchemaSource } from '../generate-client.ts';
import { kubernetesFiles } from '../k8s/index.ts';
import { DOCKER_DNS_CONF, renderDockerDns, renderMonitoringCompose, renderSplitCompose } from './compose.ts';
import { renderConfigReference } from './config-reference.ts';
import { renderGatewayTemplate } from './nginx.ts';
import { renderPrometheusSplit } from './prometheus.ts';
import { ROOT } from './registry.ts';

export { ROOT };

export interface Output {
  /** The file's path from the repository root. */
  file: string;
  render: () => string | Promise<string>;
}

export const GENERATED: Output[] = [
  { file: 'deploy/nginx/toko.conf.template', render: renderGatewayTemplate },
  { file: 'docker-compose.split.yml', render: renderSplitCompose },
  { file: DOCKER_DNS_CONF, render: renderDockerDns },
  { file: 'docker-compose.monitoring.yml', render: () => renderMonitoringCompose('docker-compose.monitoring.yml') },
  {
    file: 'docker-compose.split.monitoring.yml',
    render: () => renderMonitoringCompose('docker-compose.split.monitoring.yml'),
  },
  { file: 'monitoring/prometheus/split.yml', render: renderPrometheusSplit },
  { file: path.relative(ROOT, CLIENT_SCHEMA), render: clientSchemaSource },
  { file: 'docs/configuration.md', render: renderConfigReference },
  ...kubernetesFiles(renderGatewayTemplate),
];

const committed = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
};

/** The outputs whose file under `root` is missing or differs from what they render now. */
export async function staleOutputs(root = ROOT, outputs = GENERATED): Promise<string[]> {
  const stale: string[] = [];
  for (const o of outputs) if (committed(path.join(root, o.file)) !== (await o.render())) stale.push(o.file);
  return stale;
}

/** Writes every output under `root` (making its folder when need be); returns the files written. */
export async function writeOutputs(root = ROOT, outputs = GENERATED): Promise<string[]> {
  for (const o of outputs) {
    const file = path.join(root, o.file);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, await o.render());
  }
  return outputs.map((o) => o.file);
}
