import { App } from './app.js';
import { operatorSettingsHelp } from './config/client.js';
import { buildCommand, type Config, HelpRequested, parseConfig } from './config/config.js';
import { StartError } from './errors.js';
import { routeGrpcLogs } from './grpc/grpc-logs.js';
import { createLogger } from './logger.js';

/**
 * Runs a node as this process: config → logger → app → start; SIGTERM/SIGINT → graceful stop →
 * exit 0. The one server entry, reached by `node dist/main.js` and by `pushgate serve`. `name` is
 * how --help names the command. Owns the process from here: it exits on a bad config or a failed start.
 */
export function serve(argv: readonly string[], env: NodeJS.ProcessEnv, name = 'pushgate'): void {
  run(argv, env, name).catch((err: unknown) => {
    const detail = err instanceof StartError ? err.message : ((err as Error).stack ?? String(err));
    process.stderr.write(`pushgate: failed to start: ${detail}\n`);
    process.exit(1);
  });
}

async function run(argv: readonly string[], env: NodeJS.ProcessEnv, name: string): Promise<void> {
  const command = buildCommand().name(name);
  command.addHelpText('after', operatorSettingsHelp());
  let config: Config;
  try {
    config = parseConfig(argv, env, command);
  } catch (err) {
    if (err instanceof HelpRequested) process.exit(0);
    process.stderr.write(`pushgate: configuration error: ${(err as Error).message}\nRun with --help to see every option.\n`);
    process.exit(2);
  }

  const log = createLogger(config.server.logLevel);
  routeGrpcLogs(log);
  warnAboutUnsafeModes(config, log);
  const app = new App(config, log);
  const ports = await app.start();
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      log.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    signalled = true;
    log.info({ signal }, 'draining for shutdown');
    app.stop().then(
      () => {
        log.info('pushgate stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGHUP', () => {
    log.info('SIGHUP: reloading API keys and TLS certificates');
    app.reloadCredentials();
  });
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Announced only once the handlers are in place: whoever sees this line may signal at once.
  log.info(
    { nodeId: config.server.nodeId, host: config.server.host, grpcHost: config.api.host, ...ports, clientTypes: config.edge.clientTypes },
    'pushgate started',
  );
}

function warnAboutUnsafeModes(config: Config, log: ReturnType<typeof createLogger>): void {
  if (config.server.dev) {
    log.warn(
      { secretGenerated: config.auth.secretGenerated },
      'DEVELOPMENT MODE (PUSHGATE_DEV): anyone who can reach GET /dev/token can mint a token for any user. Never run this in production.',
    );
  }
  if (config.api.allowUnauthenticated) {
    log.warn(
      { grpcHost: config.api.host },
      'UNAUTHENTICATED gRPC API (PUSHGATE_GRPC_ALLOW_UNAUTHENTICATED): anyone who can reach the gRPC port can push to, list and log out any user.',
    );
  }
  if (config.auth.insecureQueryAuth) {
    log.warn(
      'INSECURE QUERY AUTH (PUSHGATE_INSECURE_QUERY_AUTH): clients without a token are trusted to name their own userId. Any client can impersonate any user.',
    );
  }
}
