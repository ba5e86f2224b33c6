import type { Logger } from 'pino';
import type { Socket } from 'socket.io-client';
import { App } from '../../src/app.js';
import { parseConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/logger.js';
import { TestPushClient } from './grpc-client.js';
import { nodeClients } from './socket-client.js';
import { TEST_SECRET } from './tokens.js';

export interface TestNode {
  readonly app: App;
  readonly grpcAddress: string;
  readonly httpUrl: string;
  readonly client: TestPushClient;
  /** Opens a v4 client for `userId` with a valid token; closed by `stop()`. */
  connect(userId: string, clientType: string): Promise<Socket>;
  stop(): Promise<void>;
}

/**
 * Starts a real pushgate node (the same App main.ts runs) on free loopback ports, with a known
 * HS256 secret. `env` overrides any setting by its environment variable name.
 */
export async function startNode(env: Record<string, string> = {}, logger?: Logger): Promise<TestNode> {
  const config = parseConfig([], {
    PUSHGATE_GRPC_PORT: '0',
    PUSHGATE_HTTP_PORT: '0',
    PUSHGATE_HOST: '127.0.0.1',
    PUSHGATE_JWT_SECRET: TEST_SECRET,
    PUSHGATE_SHUTDOWN_GRACE_MS: '2000',
    ...env,
  });
  const app = new App(config, logger ?? createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'));
  const { grpcPort, httpPort } = await app.start();
  const grpcAddress = `127.0.0.1:${grpcPort}`;
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  const client = new TestPushClient(grpcAddress);
  const clients = nodeClients(httpUrl);
  return {
    app,
    grpcAddress,
    httpUrl,
    client,
    connect: clients.connect,
    async stop() {
      clients.closeAll();
      client.close();
      await app.stop();
    },
  };
}
