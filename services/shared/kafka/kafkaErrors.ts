import { IllegalStateError, UnavailableError, type AppErrorUnion } from '../../../schemas/index.js';

const isRetriableKafkaError = (e: unknown): boolean => {
  if (typeof e !== 'object' || e === null) return false;
  const name = (e as { name?: unknown }).name;
  // retries ran out on a transient condition (broker down, leader moving): still transient for the caller
  if (name === 'KafkaJSNumberOfRetriesExceeded' || name === 'KafkaJSConnectionError' || name === 'KafkaJSRequestTimeoutError') return true;
  return (e as { retriable?: unknown }).retriable === true;
};

/**
 * The one translation of kafkajs errors into our closed set: transient broker trouble becomes
 * {@link UnavailableError} (retriable), anything else (unknown topic, message too large, auth) an
 * {@link IllegalStateError}; the kafkajs error stays as `cause`.
 */
export const convertKafkaError = (e: unknown, doing: string): AppErrorUnion => {
  const message = `${doing}: ${e instanceof Error ? e.message : String(e)}`;
  return isRetriableKafkaError(e) ? new UnavailableError(message, { cause: e }) : new IllegalStateError(message, { cause: e });
};
