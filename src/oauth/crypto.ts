import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** The broker's at-rest key (BROKER_SECRET_KEY): 32 bytes, base64 (or base64url). */
export function parseSecretKey(value: string): Buffer {
  const raw = value.trim();
  const key = Buffer.from(raw, /[-_]/.test(raw) ? 'base64url' : 'base64');
  if (key.length !== 32) throw new Error('BROKER_SECRET_KEY must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)');
  return key;
}

/**
 * AES-256-GCM sealing of small secrets. Every write draws a fresh 96-bit IV; the label the
 * value is stored under is the additional authenticated data, so a sealed value copied to
 * another label (another server's tokens) fails to open.
 */
export class SecretBox {
  private static readonly VERSION = 'v1';
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('AES-256-GCM needs a 32-byte key');
  }

  seal(label: string, plaintext: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(label, 'utf8'));
    const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
    return [SecretBox.VERSION, iv.toString('base64url'), ct.toString('base64url'), c.getAuthTag().toString('base64url')].join('.');
  }

  /** Throws when the value was altered, sealed under another key, or stored under another label. */
  open(label: string, sealed: string): string {
    const [v, iv, ct, tag] = sealed.split('.');
    if (v !== SecretBox.VERSION || !iv || ct === undefined || !tag) throw new Error('not a sealed value');
    const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    d.setAAD(Buffer.from(label, 'utf8'));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
  }
}
