import client from 'prom-client';

/**
 * The `server_label` of a metric: registered servers by their label (admin-chosen, bounded);
 * every inline server as one value, `inline` — caller-chosen labels would make one series
 * per label, forever (issue 10 item 7).
 */
export const INLINE_METRIC_LABEL = 'inline';
export function metricLabel(server: { server_label: string; record?: unknown }): string {
  return server.record ? server.server_label : INLINE_METRIC_LABEL;
}

/** One prom-client registry per app instance (no module-level singletons). */
export class Metrics {
  readonly registry = new client.Registry();
  readonly httpDuration = new client.Histogram({
    name: 'broker_http_request_duration_seconds',
    help: 'HTTP request latency by route',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly upstreamDuration = new client.Histogram({
    name: 'broker_mcp_upstream_duration_seconds',
    help: 'Upstream MCP request latency by server_label and method',
    labelNames: ['server_label', 'method', 'outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly upstreamErrors = new client.Counter({
    name: 'broker_mcp_upstream_errors_total',
    help: 'Upstream MCP failures by server_label and kind',
    labelNames: ['server_label', 'method', 'kind'],
    registers: [this.registry],
  });
  readonly modelDuration = new client.Histogram({
    name: 'broker_model_upstream_duration_seconds',
    help: 'Model upstream latency per turn (Responses layer)',
    labelNames: ['outcome'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  readonly cacheLookups = new client.Counter({
    name: 'broker_tool_cache_lookups_total',
    help: 'Tool listing cache lookups',
    labelNames: ['server_label', 'result'],
    registers: [this.registry],
  });
  readonly webhookDeliveries = new client.Counter({
    name: 'broker_webhook_deliveries_total',
    help: 'Webhook delivery outcomes',
    labelNames: ['outcome'],
    registers: [this.registry],
  });

  constructor(gauges: { openSessions: () => number; pendingApprovals: () => number; openBreakers: () => number; inflight: () => number }) {
    client.collectDefaultMetrics({ register: this.registry });
    new client.Gauge({ name: 'broker_mcp_open_sessions', help: 'Open upstream MCP sessions', registers: [this.registry], collect() { this.set(gauges.openSessions()); } });
    new client.Gauge({ name: 'broker_pending_approvals', help: 'Pending approval requests', registers: [this.registry], collect() { this.set(gauges.pendingApprovals()); } });
    new client.Gauge({ name: 'broker_mcp_inflight_requests', help: 'Upstream MCP requests in flight', registers: [this.registry], collect() { this.set(gauges.inflight()); } });
    new client.Gauge({ name: 'broker_open_circuit_breakers', help: 'Upstream origins whose breaker is open', registers: [this.registry], collect() { this.set(gauges.openBreakers()); } });
  }
}
