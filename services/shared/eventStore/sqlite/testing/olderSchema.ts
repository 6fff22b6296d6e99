/**
 * For tests that turn a current store file into one of schema v5 or older: the stream head table that v1
 * created and v6 dropped, with its rows as the writers of those versions kept them (each stream's last event).
 * Without it the file is no older file at all, and migrating it from there fails on the missing table.
 */
export const STREAM_HEADS_BEFORE_V6 = `
  CREATE TABLE streams (name TEXT PRIMARY KEY, revision INTEGER NOT NULL, position INTEGER NOT NULL, hash BLOB NOT NULL) WITHOUT ROWID;
  INSERT INTO streams (name, revision, position, hash) SELECT stream, revision, max(position), hash FROM events GROUP BY stream;
`;
