/** monitoring/prometheus/split.yml: Prometheus scraping every service of the split topology directly. */
import { MODULE_NAMES } from '../../src/registry.ts';
import { BANNER } from './registry.ts';

export function renderPrometheusSplit(): string {
  return `# Prometheus for docker-compose.split.yml: each service is scraped directly
# on METRICS_PORT (9464), never published (and the gateway never routes /metrics). Every series carries a \`service\`
# label (toko-user, toko-product, ...) set by the process itself.
${BANNER}
global:
  scrape_interval: 10s
  evaluation_interval: 10s

# Dead events, an outbox falling behind, failed queue jobs, an open breaker, 5xx rate, slow p99, stuck orders.
rule_files:
  - /etc/prometheus/alerts.yml

scrape_configs:
  - job_name: toko
    metrics_path: /metrics
    static_configs:
      - targets: [${MODULE_NAMES.map((m) => `"${m}:9464"`).join(', ')}]
`;
}
