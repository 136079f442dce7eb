import type { ServerRecord } from '../config/serverRecord.js';

/**
 * Where server records live. Labels are looked up case-insensitively. Every write resolves
 * only once it is durable. Embedded: a JSON file; shared: Redis (§9).
 */
export interface RegistryStore {
  list(): Promise<ServerRecord[]>;
  get(label: string): Promise<ServerRecord | undefined>;
  /** Throws ConflictError `server_label_taken`. */
  create(record: ServerRecord): Promise<ServerRecord>;
  /** Throws NotFoundError `unknown_server_label`. */
  replace(label: string, record: ServerRecord): Promise<ServerRecord>;
  delete(label: string): Promise<boolean>;
  /** Record new tool pins without counting as an admin change. */
  setPins(label: string, pins: Record<string, string>): Promise<void>;
  /** Called with the label after every admin write (create, replace, delete). */
  onChange(listener: (label: string) => void): () => void;
  close(): Promise<void>;
}

export const labelKey = (label: string) => label.toLowerCase();

/** What listings, sessions and approvals of a registered server are keyed by. */
export const registeredServerKey = (label: string) => `reg:${labelKey(label)}`;
