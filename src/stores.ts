import type { Logger } from 'pino';
import { MemoryApprovalStore } from './approvals/memoryStore.js';
import { RedisApprovalStore } from './approvals/redisStore.js';
import type { ApprovalStore } from './approvals/store.js';
import { MemoryDeliveryQueue, RedisDeliveryQueue, type DeliveryQueue } from './approvals/queue.js';
import { ConfigError, type Env } from './config/env.js';
import { FileKeyStore, parseKeys } from './keys/fileStore.js';
import { MemoryRateLimiter, RedisRateLimiter, type RateLimiter } from './keys/rateLimit.js';
import { RedisKeyStore } from './keys/redisStore.js';
import type { KeyStore } from './keys/store.js';
import { FileRegistryStore, parseServers, RegistryFile } from './registry/fileStore.js';
import { RedisRegistryStore } from './registry/redisStore.js';
import type { RegistryStore } from './registry/store.js';
import { RedisResponseStore } from './responses/redisStore.js';
import { MemoryResponseStore, type ResponseStore } from './responses/store.js';
import { RedisBus, localBus, type ClusterBus } from './store/bus.js';
import { RedisConnection } from './store/redis.js';

/** Every piece of state the broker keeps, embedded or shared. */
export interface Stores {
  /** The Redis connection when `BROKER_STORE` is set. */
  conn: RedisConnection | undefined;
  /** Embedded: the registry file whose sections the file stores write (undefined with Redis). */
  file: RegistryFile | undefined;
  bus: ClusterBus;
  registry: RegistryStore;
  /** Named API keys, beside the registry (file section or Redis). */
  keys: KeyStore;
  rateLimiter: RateLimiter;
  approvals: ApprovalStore;
  responses: ResponseStore;
  deliveries: DeliveryQueue;
  /** True while the shared store answers (always true when embedded). */
  healthy(): boolean;
  close(): Promise<void>;
}

export interface StoreTuning {
  webhookLeaseMs?: number;
  webhookPollMs?: number;
}

/** `BROKER_STORE` switches every store, in this one place (SPEC §9). */
export async function stores(env: Env, logger: Logger, t: StoreTuning = {}): Promise<Stores> {
  if (!env.BROKER_STORE) {
    const file = await RegistryFile.open(env.BROKER_CONFIG);
    const registry = FileRegistryStore.on(file);
    const keys = FileKeyStore.on(file);
    const approvals = new MemoryApprovalStore();
    return {
      conn: undefined,
      file,
      bus: localBus,
      registry,
      keys,
      rateLimiter: new MemoryRateLimiter(),
      approvals,
      responses: new MemoryResponseStore(),
      deliveries: new MemoryDeliveryQueue(),
      healthy: () => true,
      async close() {
        await approvals.close();
        await registry.close();
      },
    };
  }
  const conn = new RedisConnection(env.BROKER_STORE, logger.child({ component: 'store' }));
  await conn.connect().catch((e: Error) => {
    throw new ConfigError(`cannot reach BROKER_STORE: ${e.message}`);
  });
  const bus = new RedisBus(conn);
  await bus.ready();
  const file = await RegistryFile.open(env.BROKER_CONFIG);
  const registry = await RedisRegistryStore.open(conn, bus, logger, parseServers(file));
  const keys = await RedisKeyStore.open(conn, logger, parseKeys(file));
  const approvals = new RedisApprovalStore(conn, bus);
  return {
    conn,
    file: undefined,
    bus,
    registry,
    keys,
    rateLimiter: new RedisRateLimiter(conn),
    approvals,
    responses: new RedisResponseStore(conn, logger),
    deliveries: new RedisDeliveryQueue(conn, logger.child({ component: 'webhooks' }), { leaseMs: t.webhookLeaseMs, pollMs: t.webhookPollMs }),
    healthy: () => conn.healthy,
    async close() {
      await approvals.close();
      await registry.close();
      await keys.close();
      await conn.close();
    },
  };
}
