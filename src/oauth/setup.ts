import { randomBytes } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import type { Logger } from 'pino';
import { ConfigError, type Env } from '../config/env.js';
import type { AgentPool } from '../mcp/egress.js';
import type { SecretValues } from '../obs/logger.js';
import type { RegistryFile } from '../registry/fileStore.js';
import type { RegistryStore } from '../registry/store.js';
import type { RedisConnection } from '../store/redis.js';
import { parseSecretKey, SecretBox } from './crypto.js';
import { guardedFetchFor } from './guardedFetch.js';
import { OAuthManager } from './manager.js';
import { FileKv, MemoryKv, readLegacyOAuthFile, RedisKv, SecretStore } from './store.js';

export interface OAuthSetup {
  env: Env;
  conn: RedisConnection | undefined;
  /** Embedded: the registry file, whose `"oauth"` section holds the sealed secrets. */
  file: RegistryFile | undefined;
  registry: RegistryStore;
  agents: AgentPool;
  publicUrl: string;
  processEnv: NodeJS.ProcessEnv;
  logger: Logger;
  secrets: SecretValues;
  stateTtlMs?: number;
}

/** Where earlier versions kept the sealed OAuth secrets (embedded mode); imported once. */
export const legacyOAuthFileOf = (configPath: string) => `${configPath}.oauth.json`;

/**
 * With BROKER_SECRET_KEY: secrets sealed in the registry's store (Redis, or the `"oauth"`
 * section of BROKER_CONFIG). Without: client_credentials tokens live in this process's memory only, and an
 * authorization_code record refuses start-up.
 */
export async function createOAuth(s: OAuthSetup): Promise<OAuthManager> {
  const keyText = s.env.BROKER_SECRET_KEY;
  if (!keyText) {
    const needing = (await s.registry.list()).find((r) => r.oauth?.grant === 'authorization_code');
    if (needing) {
      throw new ConfigError(`BROKER_SECRET_KEY is not set but server '${needing.server_label}' uses oauth.grant "authorization_code": set BROKER_SECRET_KEY (32 bytes, base64) to store its tokens encrypted`);
    }
  }
  const box = new SecretBox(keyText ? parseSecretKey(keyText) : randomBytes(32));
  const kv = !keyText ? new MemoryKv() : s.conn ? new RedisKv(s.conn) : await fileKv(s);
  return new OAuthManager({
    store: new SecretStore(kv, box),
    persistent: Boolean(keyText),
    publicUrl: s.publicUrl,
    fetchFor: guardedFetchFor(s.agents),
    env: s.processEnv,
    logger: s.logger.child({ component: 'oauth' }),
    secrets: s.secrets,
    stateTtlMs: s.stateTtlMs,
  });
}

/** The registry file's `"oauth"` section; an older separate secrets file is moved into it once. */
async function fileKv(s: OAuthSetup): Promise<FileKv> {
  if (!s.file) throw new Error('an embedded OAuth store needs the registry file');
  const kv = FileKv.on(s.file);
  const legacy = legacyOAuthFileOf(s.file.path);
  const entries = await readLegacyOAuthFile(legacy);
  if (entries) {
    await kv.import(entries);
    await unlink(legacy);
    s.logger.info({ from: legacy, entries: Object.keys(entries).length }, 'moved the sealed OAuth secrets into the registry file');
  }
  return kv;
}
