import { createHash, randomBytes } from 'node:crypto';
import { newId } from '../util/ids.js';
import type { KeyBody, KeyRecord } from './schema.js';

export const KEY_PREFIX = 'mcpb_';

/** `mcpb_` + 32 URL-safe characters (192 random bits). */
export function mintKey(): { key: string; sha256: string } {
  const key = `${KEY_PREFIX}${randomBytes(24).toString('base64url')}`;
  return { key, sha256: sha256OfKey(key) };
}

export const sha256OfKey = (key: string) => createHash('sha256').update(key).digest('hex');

export function newKeyRecord(body: KeyBody, sha256: string, nowMs = Date.now()): KeyRecord {
  return { ...body, id: newId('key'), created_at: Math.floor(nowMs / 1000), hashes: [{ sha256, expires_at_ms: null }] };
}

/** PUT: the body replaces the settings; identity, creation time and accepted keys stay. */
export function replacedSettings(cur: KeyRecord, body: KeyBody): KeyRecord {
  return { ...body, name: cur.name, id: cur.id, created_at: cur.created_at, hashes: cur.hashes };
}

/** Hashes still accepted at `nowMs`. */
export function liveHashes(r: KeyRecord, nowMs = Date.now()) {
  return r.hashes.filter((h) => h.expires_at_ms === null || h.expires_at_ms > nowMs);
}

/**
 * Rotation: the new key is accepted at once; every older one stops at `nowMs + grace_s`
 * (at once when 0; an earlier expiry is never extended). Expired hashes are dropped.
 */
export function rotated(cur: KeyRecord, sha256: string, graceS: number, nowMs = Date.now()): KeyRecord {
  const until = nowMs + graceS * 1000;
  const old = graceS === 0 ? [] : liveHashes(cur, nowMs).map((h) => ({ sha256: h.sha256, expires_at_ms: h.expires_at_ms === null ? until : Math.min(h.expires_at_ms, until) }));
  // Bounded: a key rotated many times within its grace keeps only the newest old keys.
  return { ...cur, hashes: [{ sha256, expires_at_ms: null }, ...old.slice(-30)] };
}
