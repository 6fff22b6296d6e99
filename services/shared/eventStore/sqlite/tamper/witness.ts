import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { IllegalStateError, ValidationError } from '../../../../../schemas/index.js';
import { cosignNote, openCheckpoint, verifierKeyOf, type NoteSigner } from '../../format/checkpoint.js';
import type { Database } from 'better-sqlite3';
import { verifyConsistency } from '../../format/merkle.js';
import { latestCheckpoint, storeConsistencyProof } from './tlogStore.js';

/**
 * An independent witness: it keeps its own key and its own state (the last checkpoint it cosigned), and
 * cosigns a new checkpoint of the log only when a consistency proof shows the new tree extends that one.
 * A log that truncated or rewrote history (a fork) can then no longer get a cosignature, and verifiers that
 * require one see it.
 */
export const WitnessStateSchema = z.strictObject({
  format: z.literal('iommutrail-witness/v1'),
  /** the log's identity, pinned at the first checkpoint: origin and verifier key */
  origin: z.string().min(1),
  logKey: z.string().min(1),
  /** the last checkpoint cosigned (the signed note, with this witness's line) */
  last: z.strictObject({ size: z.number().int().min(0), root: z.string(), note: z.string() }).optional(),
});
export type WitnessState = z.output<typeof WitnessStateSchema>;

export type WitnessRefusal = 'bad-checkpoint' | 'truncated' | 'fork';
export type WitnessResult = { ok: true; cosigned: string; size: number } | { ok: false; refusal: WitnessRefusal; reason: string };

export interface Witness {
  /** the verifier key of this witness, for `verify` and auditors */
  readonly verifierKey: string;
  /** judges a checkpoint with the proof from the last cosigned one (empty for the first or an equal size) */
  submit(note: string, proof: readonly Buffer[]): WitnessResult;
  state(): WitnessState | undefined;
}

export interface WitnessOptions {
  readonly statePath: string;
  /** the witness's own ed25519 private key (PEM); minted only when neither it nor the state exists */
  readonly keyPath: string;
  readonly name: string;
  /** the log it witnesses: its origin and public key, pinned in the state at the first checkpoint */
  readonly log: { readonly origin: string; readonly publicKey: KeyObject };
}

const readState = (path: string): WitnessState | undefined => {
  if (!existsSync(path)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ValidationError(`${path}: witness state is not JSON (${(e as Error).message})`);
  }
  const parsed = WitnessStateSchema.safeParse(json);
  if (!parsed.success) throw new ValidationError(`${path}: witness state ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
};

const writeState = (path: string, state: WitnessState): void => {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
};

const loadKey = (keyPath: string, statePath: string): KeyObject => {
  if (!existsSync(keyPath)) {
    if (existsSync(statePath)) {
      throw new IllegalStateError(`${keyPath}: the witness's key is missing but its state ${statePath} exists: restore the key; a new one is never minted over a witness's history`);
    }
    mkdirSync(dirname(keyPath), { recursive: true });
    writeFileSync(keyPath, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  }
  const key = createPrivateKey(readFileSync(keyPath));
  if (key.asymmetricKeyType !== 'ed25519') throw new IllegalStateError(`${keyPath}: the witness key must be ed25519`);
  return key;
};

/**
 * Hands the store's latest checkpoint to the witness with the consistency proof from the last one it cosigned.
 * The proof comes from the (untrusted) store: the witness checks it.
 */
export const witnessStoreCheckpoint = (db: Database, witness: Witness): WitnessResult => {
  const latest = latestCheckpoint(db);
  if (!latest) return { ok: false, refusal: 'bad-checkpoint', reason: 'the store holds no signed checkpoint' };
  const last = witness.state()?.last?.size ?? 0;
  // a smaller checkpoint is refused as truncated without a proof; a proof cannot be made to a tree the store lacks
  const proof = last > 0 && last < latest.size ? storeConsistencyProof(db, last, latest.size) : [];
  return witness.submit(latest.note, proof);
};

export const createWitness = (options: WitnessOptions): Witness => {
  const privateKey = loadKey(options.keyPath, options.statePath);
  const signer: NoteSigner = { name: options.name, privateKey, publicKey: createPublicKey(privateKey) };
  const logVerifier = { name: options.log.origin, publicKey: options.log.publicKey };
  const logKey = verifierKeyOf(logVerifier);
  let state = readState(options.statePath);
  if (state && (state.origin !== options.log.origin || state.logKey !== logKey)) {
    throw new IllegalStateError(`${options.statePath}: this witness follows log ${state.origin} (${state.logKey}), not ${options.log.origin} (${logKey})`);
  }
  return {
    verifierKey: verifierKeyOf(signer),
    state: () => state,
    submit: (note, proof) => {
      const opened = openCheckpoint(note, [logVerifier]);
      if (!opened.ok) return { ok: false, refusal: 'bad-checkpoint', reason: opened.reason };
      const c = opened.value.checkpoint;
      if (c.origin !== options.log.origin) return { ok: false, refusal: 'bad-checkpoint', reason: `checkpoint of log ${c.origin}, this witness follows ${options.log.origin}` };
      const last = state?.last;
      if (last) {
        const lastRoot = Buffer.from(last.root, 'base64');
        if (c.size < last.size) {
          return { ok: false, refusal: 'truncated', reason: `the log now claims ${c.size} leaves, but this witness cosigned ${last.size}: history was truncated` };
        }
        if (!verifyConsistency(last.size, c.size, lastRoot, c.root, proof)) {
          return {
            ok: false,
            refusal: 'fork',
            reason: `no valid consistency proof from the checkpoint this witness cosigned (size ${last.size}) to this one (size ${c.size}): the log forked or rewrote history`,
          };
        }
      }
      const cosigned = cosignNote(note.endsWith('\n') ? note : `${note}\n`, signer);
      state = { format: 'iommutrail-witness/v1', origin: options.log.origin, logKey, last: { size: c.size, root: c.root.toString('base64'), note: cosigned } };
      writeState(options.statePath, state);
      return { ok: true, cosigned, size: c.size };
    },
  };
};
