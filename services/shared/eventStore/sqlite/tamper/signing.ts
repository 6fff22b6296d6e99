import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { IllegalStateError, ValidationError } from '../../../../../schemas/index.js';
import { canonicalJson } from '../../format/chain.js';

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

export interface LoadSigningKeysOptions {
  /**
   * whether a missing pair may be minted: only for a store that has sealed nothing yet (a new key would make
   * every earlier seal read as tampered)
   */
  readonly mayMint: boolean;
  /** how many seals the store holds, for the message when the key is missing */
  readonly seals?: number;
}

const rotationHint = (privPath: string, pubPath: string): string =>
  `restore ${privPath} from a backup. To rotate keys on purpose: keep a copy of the old public key ${pubPath} (verify the old seals with \`iommutrail verify --public-key <copy>\`), ` +
  `then create the new private key yourself (\`openssl genpkey -algorithm ed25519 -out ${privPath}\`, mode 0600) and remove ${pubPath}; the store writes the new public key at its next start`;

const readPrivateKey = (privPath: string, pubPath: string): KeyObject => {
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(privPath));
  } catch (e) {
    const cause = (e as NodeJS.ErrnoException).code === 'EACCES' ? 'permission denied' : `not a PEM private key: ${(e as Error).message}`;
    throw new IllegalStateError(`${privPath}: cannot read the store's signing key (${cause}); ${rotationHint(privPath, pubPath)}`, { cause: e });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new IllegalStateError(`${privPath}: the store's signing key must be ed25519, found ${key.asymmetricKeyType ?? 'a symmetric key'}; ${rotationHint(privPath, pubPath)}`);
  }
  return key;
};

/**
 * Loads `<dir>/iommutrail-signing.key`. The pair is minted (private key mode 0600, public key beside it) only
 * when `mayMint` says the store has sealed nothing: a key that went missing after seals exist is never
 * silently replaced, and a file that is not an ed25519 PEM key is refused, both naming the file.
 * **WARNING**: whoever can write the data folder can also re-sign; publish the public key (or the seals)
 * somewhere the writer cannot reach, and pin it with `verify --public-key`.
 */
export const loadSigningKeys = (dir: string, options: LoadSigningKeysOptions): SigningKeys => {
  const privPath = join(dir, PRIVATE_KEY_FILE);
  const pubPath = join(dir, PUBLIC_KEY_FILE);
  if (!existsSync(privPath)) {
    if (!options.mayMint) {
      const held = options.seals !== undefined ? `${options.seals} signed checkpoint(s)` : 'signed checkpoints';
      throw new IllegalStateError(
        `${privPath}: the store's signing key is missing, but the store holds ${held}; a new key would make every one of them read as tampered, so none is minted. To continue, ${rotationHint(privPath, pubPath)}`,
      );
    }
    mkdirSync(dirname(privPath), { recursive: true });
    const pair = generateKeyPairSync('ed25519');
    writeFileSync(privPath, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    writeFileSync(pubPath, publicKeyPem(pair.publicKey), { mode: 0o644 });
  }
  const privateKey = readPrivateKey(privPath, pubPath);
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

/** v1 (before issue 23): a signed checkpoint of every chain head; still read and verified, no longer written */
export const SealPayloadV1Schema = z.strictObject({
  format: z.literal('iommutrail-seal/v1'),
  /** wall clock at sealing, ns since the epoch */
  sealedAtNs: DecimalSchema,
  keyId: HexHashSchema,
  heads: z.array(SealHeadSchema),
});

/**
 * v2 (issue 23): an incremental seal. `heads` lists only the streams whose head moved since the previous seal
 * (plus any asked for, e.g. the host of an export); `previous` is the SHA-256 of the previous seal's payload
 * bytes (null for a store's first seal), so the seals form a chain and the whole head set at any seal is the
 * replay of every seal up to it (a v1 seal, all heads, starts the set afresh). `upTo` is the log position it
 * covers (the store's last position, the tree size of the checkpoint cut with it).
 */
export const SealPayloadV2Schema = z.strictObject({
  format: z.literal('iommutrail-seal/v2'),
  sealedAtNs: DecimalSchema,
  keyId: HexHashSchema,
  previous: HexHashSchema.nullable(),
  upTo: DecimalSchema,
  heads: z.array(SealHeadSchema),
});

/** what `verify` checks the chains against */
export const SealPayloadSchema = z.discriminatedUnion('format', [SealPayloadV1Schema, SealPayloadV2Schema]);
export type SealPayload = z.output<typeof SealPayloadSchema>;

export interface SignedSeal {
  /** canonical JSON of a {@link SealPayload}: the exact signed bytes */
  readonly payload: string;
  /** ed25519 signature over `payload`, base64 */
  readonly signature: string;
}

/** what the next seal chains from: the previous seal's payload hash and the log position it covers */
export interface SealLink {
  readonly hash: string;
  readonly upTo: bigint;
}

/** the SHA-256 of a seal's payload bytes, hex: the next seal's `previous` */
export const sealHashOf = (payload: string): string => createHash('sha256').update(payload).digest('hex');

/** the log position a seal covers: v2 says it; a v1 seal's newest head (it listed them all) */
export const sealCovers = (payload: SealPayload): bigint =>
  payload.format === 'iommutrail-seal/v2' ? BigInt(payload.upTo) : payload.heads.reduce((m, h) => (BigInt(h.position) > m ? BigInt(h.position) : m), 0n);

/** the link to a stored seal, read from its bytes (unreadable bytes cover nothing: the next seal then lists every head) */
export const sealLinkOf = (payload: string): SealLink => {
  let upTo = 0n;
  try {
    const parsed = SealPayloadSchema.safeParse(JSON.parse(payload));
    if (parsed.success) upTo = sealCovers(parsed.data);
  } catch {
    // not JSON: covers nothing
  }
  return { hash: sealHashOf(payload), upTo };
};

/** signs an incremental (v2) seal of `heads`, chained to `previous` (undefined: the store's first seal) */
export const signSeal = (keys: SigningKeys, heads: readonly SealHead[], sealedAtNs: bigint, previous: SealLink | undefined, upTo: bigint): SignedSeal => {
  const body: SealPayload = {
    format: 'iommutrail-seal/v2',
    sealedAtNs: sealedAtNs.toString(),
    keyId: keys.keyId,
    previous: previous?.hash ?? null,
    upTo: upTo.toString(),
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

/** where a rotated-out public key is kept: `iommutrail-signing.<first 16 hex of its key id>.pub` */
export const retiredPublicKeyFile = (keyId: string): string => `iommutrail-signing.${keyId.slice(0, 16)}.pub`;
const RETIRED = /^iommutrail-signing\.[0-9a-f]{16}\.pub$/;

/** the rotated-out public keys kept in a key folder (oldest first by name is not implied: order does not matter) */
export const retiredPublicKeys = (dir: string): KeyObject[] =>
  existsSync(dir) ? readdirSync(dir).filter((f) => RETIRED.test(f)).map((f) => readPublicKey(join(dir, f))) : [];

export interface RotateResult {
  readonly oldKeyId: string;
  readonly newKeyId: string;
  /** where the old public key is kept, to verify the checkpoints and seals it signed */
  readonly retired: string;
}

/**
 * Rotates the signing key on purpose: the old public key is kept as {@link retiredPublicKeyFile} (verify reads
 * it for older checkpoints), a new pair replaces the current one. Run it with the service stopped: the next
 * start signs with the new key. Refuses when there is no current key (nothing to rotate: restore it).
 */
export const rotateSigningKeys = (dir: string): RotateResult => {
  const privPath = join(dir, PRIVATE_KEY_FILE);
  const pubPath = join(dir, PUBLIC_KEY_FILE);
  if (!existsSync(privPath)) throw new IllegalStateError(`${privPath}: no signing key to rotate (a missing key is restored from a backup, never replaced)`);
  const old = loadSigningKeys(dir, { mayMint: false });
  const retired = join(dir, retiredPublicKeyFile(old.keyId));
  writeFileSync(retired, publicKeyPem(old.publicKey), { mode: 0o644 });
  const pair = generateKeyPairSync('ed25519');
  const tmp = `${privPath}.new`;
  writeFileSync(tmp, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  renameSync(tmp, privPath);
  writeFileSync(pubPath, publicKeyPem(pair.publicKey), { mode: 0o644 });
  return { oldKeyId: old.keyId, newKeyId: keyIdOf(pair.publicKey), retired };
};
