import { ValidationError, hostOfStream, type IommuEvent } from '../../../schemas/index.js';

/** shared by every adapter: a non-empty stream name, and a host stream only takes its own host's events */
export const assertAppendable = (streamName: string, events: readonly IommuEvent[]): void => {
  if (streamName.length === 0) throw new ValidationError('streamName: must not be empty', [{ path: 'streamName', message: 'must not be empty' }]);
  const host = hostOfStream(streamName);
  if (host === undefined) return;
  const i = events.findIndex((e) => e.host !== host);
  if (i >= 0) {
    const message = `event of host ${JSON.stringify(events[i]!.host)} cannot go to stream ${streamName}`;
    throw new ValidationError(`events[${i}].host: ${message}`, [{ path: `events[${i}].host`, message }]);
  }
};
