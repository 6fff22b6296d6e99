import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

/**
 * Signed checkpoints in the C2SP `tlog-checkpoint` format, carried in a C2SP `signed-note`:
 *
 * ```
 * <origin>\n<tree size, decimal>\n<root hash, base64>\n      ← the signed text
 * \n
 * — <key name> <base64(key id (4 bytes) || ed25519 signature (64 bytes))>\n   ← one line per signer
 * ```
 *
 * The key id is the first 4 bytes of SHA-256(key name || 0x0A || 0x01 || the 32-byte ed25519 public key); a
 * verifier key is written `<name>+<key id, 8 hex>+<base64(0x01 || public key)>`, the form Go's
 * `golang.org/x/mod/sumdb/note` reads. A witness cosigns by adding its own signature line to the same note.
 */
export interface Checkpoint {
  /** names the log: a verifier pins it, so a checkpoint of another log never passes for this one */
  readonly origin: string;
  readonly size: number;
  readonly root: Buffer;
}

export interface NoteSigner {
  readonly name: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

export interface NoteVerifier {
  readonly name: string;
  readonly publicKey: KeyObject;
}

const ALG_ED25519 = 0x01;
const SIG_PREFIX = '\u2014 ';
const NAME = /^[^\s+]+$/;

/** the 32 raw bytes of an ed25519 public key */
export const rawEd25519 = (publicKey: KeyObject): Buffer => {
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new TypeError('not an ed25519 public key');
  return Buffer.from(jwk.x, 'base64url');
};

export const ed25519FromRaw = (raw: Uint8Array): KeyObject =>
  createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });

/** C2SP signed-note key id: first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key) */
export const noteKeyId = (name: string, publicKey: KeyObject): Buffer =>
  createHash('sha256')
    .update(Buffer.concat([Buffer.from(`${name}\n`), Buffer.from([ALG_ED25519]), rawEd25519(publicKey)]))
    .digest()
    .subarray(0, 4);

/** the verifier key string Go's `note.NewVerifier` and other note tools read */
export const verifierKeyOf = (v: NoteVerifier): string =>
  `${v.name}+${noteKeyId(v.name, v.publicKey).toString('hex')}+${Buffer.concat([Buffer.from([ALG_ED25519]), rawEd25519(v.publicKey)]).toString('base64')}`;

/** parses a verifier key string; undefined when malformed */
export const parseVerifierKey = (s: string): NoteVerifier | undefined => {
  const m = /^([^\s+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(s.trim());
  if (!m) return undefined;
  const raw = Buffer.from(m[3]!, 'base64');
  if (raw.length !== 33 || raw[0] !== ALG_ED25519) return undefined;
  const v = { name: m[1]!, publicKey: ed25519FromRaw(raw.subarray(1)) };
  return noteKeyId(v.name, v.publicKey).toString('hex') === m[2] ? v : undefined;
};

export const checkpointText = (c: Checkpoint): string => `${c.origin}\n${c.size}\n${c.root.toString('base64')}\n`;

const signatureLine = (text: string, signer: NoteSigner): string => {
  const sig = sign(null, Buffer.from(text), signer.privateKey);
  return `${SIG_PREFIX}${signer.name} ${Buffer.concat([noteKeyId(signer.name, signer.publicKey), sig]).toString('base64')}\n`;
};

/** a signed note of the checkpoint */
export const signCheckpoint = (c: Checkpoint, signer: NoteSigner): string => {
  if (!NAME.test(c.origin) || !NAME.test(signer.name)) throw new TypeError('origin and key name must be non-empty, without spaces or +');
  const text = checkpointText(c);
  return `${text}\n${signatureLine(text, signer)}`;
};

/** adds a cosignature line (a witness's) to a signed note */
export const cosignNote = (note: string, signer: NoteSigner): string => {
  const cut = note.indexOf('\n\n');
  if (cut < 0) throw new TypeError('not a signed note');
  return `${note}${signatureLine(note.slice(0, cut + 1), signer)}`;
};

export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  /** names of the given verifiers whose signature is on the note and valid */
  readonly signedBy: readonly string[];
  /** the signed text, exactly */
  readonly text: string;
}

export type OpenCheckpointResult = { ok: true; value: OpenedCheckpoint } | { ok: false; reason: string };

/**
 * Parses a signed checkpoint and checks the signatures of the given verifiers on it. `ok` needs at least one
 * of them to have signed; a line naming a known key whose signature does not verify makes it fail. Lines of
 * unknown keys are ignored (a note may carry witnesses' cosignatures).
 */
export const openCheckpoint = (note: string, verifiers: readonly NoteVerifier[]): OpenCheckpointResult => {
  const cut = note.indexOf('\n\n');
  if (cut < 0) return { ok: false, reason: 'not a signed note: no blank line before the signatures' };
  const text = note.slice(0, cut + 1);
  const lines = text.split('\n');
  lines.pop();
  if (lines.length < 3) return { ok: false, reason: 'not a checkpoint: expected origin, tree size and root hash lines' };
  const [origin, sizeLine, rootLine] = lines as [string, string, string];
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeLine)) return { ok: false, reason: `checkpoint tree size ${JSON.stringify(sizeLine)} is not a decimal number` };
  const root = Buffer.from(rootLine, 'base64');
  if (root.length !== 32 || root.toString('base64') !== rootLine) return { ok: false, reason: 'checkpoint root hash is not 32 bytes of base64' };
  const sigLines = note.slice(cut + 2).split('\n');
  if (sigLines.at(-1) === '') sigLines.pop();
  const signedBy: string[] = [];
  for (const line of sigLines) {
    const m = /^\u2014 ([^\s+]+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) return { ok: false, reason: `malformed signature line ${JSON.stringify(line.slice(0, 80))}` };
    const blob = Buffer.from(m[2]!, 'base64');
    if (blob.length < 5) return { ok: false, reason: 'signature line too short' };
    for (const v of verifiers) {
      if (v.name !== m[1] || !noteKeyId(v.name, v.publicKey).equals(blob.subarray(0, 4))) continue;
      if (!verify(null, Buffer.from(text), v.publicKey, blob.subarray(4))) {
        return { ok: false, reason: `bad signature by ${v.name}: the checkpoint was edited or not signed by that key` };
      }
      signedBy.push(v.name);
    }
  }
  if (signedBy.length === 0) return { ok: false, reason: 'not signed by any trusted key' };
  return { ok: true, value: { checkpoint: { origin, size: Number(sizeLine), root }, signedBy, text } };
};
