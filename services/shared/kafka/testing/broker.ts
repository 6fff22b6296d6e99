import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ITopicConfig } from 'kafkajs';
import { createKafka } from '../kafkaClient.js';

const run = promisify(execFile);
const KAFKA_DEPLOY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../deploy/kafka');

export interface EngineAvailability {
  readonly available: boolean;
  readonly reason?: string;
}

/**
 * Whether a real Kafka broker can be started here: java on the PATH and the broker jars resolvable
 * (cached, or fetched now from Maven Central by deploy/kafka/fetch-kafka.sh). Feed it to
 * `describeWithEngine('kafka', …)`, which fails instead of skipping when CI=true.
 */
export const kafkaAvailability = async (): Promise<EngineAvailability> => {
  try {
    await run('java', ['-version']);
  } catch {
    return { available: false, reason: 'java not found on PATH (the broker needs Java 17+)' };
  }
  try {
    await run(path.join(KAFKA_DEPLOY, 'fetch-kafka.sh'), [], { timeout: 300_000 });
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr?.trim();
    return { available: false, reason: `deploy/kafka/fetch-kafka.sh failed: ${stderr || (e as Error).message}` };
  }
  return { available: true };
};

/** a port the OS says is free now (a small race with other processes is accepted for tests) */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });

export interface TestBroker {
  /** bootstrap addresses for kafkajs */
  readonly brokers: string[];
  /** how long `broker.sh start` took, format included */
  readonly startMs: number;
  /** creates topics and waits until they have leaders */
  createTopics(topics: readonly ITopicConfig[]): Promise<void>;
  /** stops the broker and removes its logs and state */
  stop(): Promise<void>;
}

export interface StartTestBrokerOptions {
  /** JVM flags for the broker (broker.sh's KAFKA_JVM_OPTS); the default favours start time over throughput */
  readonly jvmOpts?: string;
}

/** starts a single-node KRaft broker via deploy/kafka/broker.sh on free loopback ports, in its own state dir */
export const startTestBroker = async (options: StartTestBrokerOptions = {}): Promise<TestBroker> => {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'iommutrail-kafka-state-'));
  const script = path.join(KAFKA_DEPLOY, 'broker.sh');
  const [port, controllerPort] = [await freePort(), await freePort()];
  const started = performance.now();
  try {
    await run(script, ['start', '--port', String(port), '--controller-port', String(controllerPort), '--state-dir', stateDir], {
      timeout: 120_000,
      env: { ...process.env, ...(options.jvmOpts ? { KAFKA_JVM_OPTS: options.jvmOpts } : {}) },
    });
  } catch (e) {
    await rm(stateDir, { recursive: true, force: true });
    throw new Error(`kafka broker did not start: ${(e as { stderr?: string }).stderr ?? (e as Error).message}`, { cause: e });
  }
  const startMs = performance.now() - started;
  const brokers = [`127.0.0.1:${port}`];
  let stopped = false;
  return {
    brokers,
    startMs,
    createTopics: async (topics) => {
      const admin = createKafka({ brokers, clientId: 'test-admin' }).admin();
      await admin.connect();
      try {
        await admin.createTopics({ topics: [...topics], waitForLeaders: true });
      } finally {
        await admin.disconnect();
      }
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      try {
        await run(script, ['stop', '--state-dir', stateDir], { timeout: 60_000 });
      } finally {
        await rm(stateDir, { recursive: true, force: true });
      }
    },
  };
};
