import { crc32 } from 'node:zlib';

/**
 * The writer's insert layout of one event (`INSERT INTO events (...)`, also what the transparency log's
 * appendRows walks): position, id, stream, revision, type, time_ns, json, prev_hash, hash, crc.
 */
export const EVENT_ROW_COLUMNS = 'position, id, stream, revision, type, time_ns, json, prev_hash, hash, crc';
export const EVENT_ROW_WIDTH = 10;

/**
 * The row check stored beside an event's bytes (`events.crc`): CRC-32 of its canonical JSON. What a trusted
 * read needs to know is that the bytes are still the ones the writer stored from a parsed event; the chain
 * hash in the same row tells no more than this (anyone who edits a row can recompute either from the row
 * alone: catching that is `verify`'s work, with the chain across rows and the signed checkpoints), at a
 * fraction of the cost of two sha256 and of reading the two hashes out as Buffers.
 */
export const rowCheckOf = (json: string): number => crc32(json);
