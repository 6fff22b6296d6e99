import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { ValidationError } from '../../../schemas/index.js';
import { canonicalJson } from './chain.js';

/** the store's signing key pair (ed25519), kept beside the database */
export interface SigningKeys {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** sha256 of the SPKI DER, hex: names the key inside each seal */
  readonly keyId: string;
}

export const PRIVATE_KEY_FILE = 'iommutrail-signing.key';
export const PUBLIC_KEY_FILE = 'iommutrail-signing.pub';

export const keyIdOf = (publicKey: KeyObject): string =>
  createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');

export const publicKeyPem = (publicKey: KeyObject): string => publicKey.export({ type: 'spki', format: 'pem' }).toString();

/**
 * Loads `<dir>/iommutrail-signing.key`, creating the pair (private key mode 0600, public key beside it) on first
 * use. **WARNING**: whoever can write the data folder can also re-sign; publish the public key (or the seals)
 * somewhere the writer cannot reach, and pin it with `verify --public-key`.
 */
export const loadOrCreateSigningKeys = (dir: string): SigningKeys => {
  const privPath = join(dir, PRIVATE_KEY_FILE);
  const pubPath = join(dir, PUBLIC_KEY_FILE);
  if (!existsSync(privPath)) {
    mkdirSync(dirname(privPath), { recursive: true });
    const pair = generateKeyPairSync('ed25519');
    writeFileSync(privPath, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    writeFileSync(pubPath, publicKeyPem(pair.publicKey), { mode: 0o644 });
  }
  const privateKey = createPrivateKey(readFileSync(privPath));
  const publicKey = createPublicKey(privateKey);
  if (!existsSync(pubPath)) writeFileSync(pubPath, publicKeyPem(publicKey), { mode: 0o644 });
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
};

export const readPublicKey = (pemPath: string): KeyObject => {
  try {
    return createPublicKey(readFileSync(pemPath));
  } catch (e) {
    throw new ValidationError(`${pemPath}: not a readable public key (${(e as Error).message})`, [], { cause: e });
  }
};

const DecimalSchema = z.string().regex(/^(0|[1-9][0-9]*)$/);
const HexHashSchema = z.string().regex(/^[0-9a-f]{64}$/);

/** the head of one stream's chain at sealing time */
export const SealHeadSchema = z.strictObject({
  stream: z.string().min(1),
  /** last revision (0-based) covered */
  revision: DecimalSchema,
  /** global position of that event */
  position: DecimalSchema,
  hash: HexHashSchema,
});
export type SealHead = z.output<typeof SealHeadSchema>;

/** a signed checkpoint of every chain head: what `verify` checks the chains against */
export const SealPayloadSchema = z.strictObject({
  format: z.literal('iommutrail-seal/v1'),
  /** wall clock at sealing, ns since the epoch */
  sealedAtNs: DecimalSchema,
  keyId: HexHashSchema,
  heads: z.array(SealHeadSchema),
});
export type SealPayload = z.output<typeof SealPayloadSchema>;

export interface SignedSeal {
  /** canonical JSON of a {@link SealPayload}: the exact signed bytes */
  readonly payload: string;
  /** ed25519 signature over `payload`, base64 */
  readonly signature: string;
}

export const signSeal = (keys: SigningKeys, heads: readonly SealHead[], sealedAtNs: bigint): SignedSeal => {
  const body: SealPayload = {
    format: 'iommutrail-seal/v1',
    sealedAtNs: sealedAtNs.toString(),
    keyId: keys.keyId,
    heads: [...heads].sort((a, b) => (a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0)),
  };
  const payload = canonicalJson(body);
  return { payload, signature: sign(null, Buffer.from(payload), keys.privateKey).toString('base64') };
};

/** checks the signature, then parses the payload (G5); a result, never a throw */
export const openSeal = (seal: SignedSeal, publicKey: KeyObject): { ok: true; value: SealPayload } | { ok: false; reason: string } => {
  let good = false;
  try {
    good = verify(null, Buffer.from(seal.payload), publicKey, Buffer.from(seal.signature, 'base64'));
  } catch (e) {
    return { ok: false, reason: `signature check failed: ${(e as Error).message}` };
  }
  if (!good) return { ok: false, reason: 'bad signature: the checkpoint was not signed by this key or was edited' };
  let json: unknown;
  try {
    json = JSON.parse(seal.payload);
  } catch {
    return { ok: false, reason: 'checkpoint payload is not JSON' };
  }
  const parsed = SealPayloadSchema.safeParse(json);
  if (!parsed.success) return { ok: false, reason: `checkpoint payload malformed: ${parsed.error.issues[0]?.message ?? 'unknown'}` };
  if (parsed.data.keyId !== keyIdOf(publicKey)) return { ok: false, reason: 'checkpoint names another key' };
  return { ok: true, value: parsed.data };
};
