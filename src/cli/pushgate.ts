#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { NodeApi } from './connection.js';
import { describeFailure, USAGE_EXIT_CODE } from './exit-codes.js';
import { defineInbox } from './inbox.js';
import { defineInboxDelete } from './inbox-delete.js';
import { defineKick } from './kick.js';
import { defineMessage } from './message.js';
import { addConnectionOptions, connectionOf } from './options.js';
import { definePresence } from './presence.js';
import { definePush } from './push.js';
import { defineReceipts } from './receipts.js';
import { defineSessions } from './sessions.js';
import { defineToken } from './token.js';

/**
 * The `pushgate` command: `serve` runs a node (the same code as `node dist/main.js`); the other
 * commands call a node's gRPC API as an operator would, or mint a client token.
 */

const EXIT_CODES_HELP = `
Exit codes: 0 success; a failed call exits with its gRPC status code (3 INVALID_ARGUMENT, 7 PERMISSION_DENIED,
14 UNAVAILABLE, 16 UNAUTHENTICATED, …); 2 a usage or configuration error (as the server exits on a bad
configuration, and as shells do; commander's usual 1 would read as CANCELLED); 1 an unexpected fault.
Errors are one line on stderr: "pushgate: UNAVAILABLE: …".
`;

function fail(line: string, exitCode: number): void {
  process.stderr.write(`pushgate: ${line}\n`);
  process.exitCode = exitCode;
}

/** Runs one call-making command: connect, act, close; a failed call is reported with a hint. */
async function withNode(command: Command, action: (api: NodeApi) => Promise<void>): Promise<void> {
  const api = new NodeApi(connectionOf(command, process.env));
  try {
    await action(api);
  } catch (err) {
    const { line, exitCode } = describeFailure(err, (e) => api.hint(e));
    fail(line, exitCode);
  } finally {
    api.close();
  }
}

function buildProgram(): Command {
  const program = new Command('pushgate')
    .description(
      'Multi-device push engine: run a node, push to users, list and kick their sessions, follow presence, manage offline inboxes, read and follow receipts, mint client tokens.',
    )
    .version(packageVersion(), '--version', 'print the version')
    .exitOverride()
    // One line, like every other error: commander's suggestion ("Did you mean push?") joins it.
    .configureOutput({
      outputError: (text, write) =>
        write(
          `pushgate: ${text
            .replace(/^error: /, '')
            .trim()
            .replace(/\s*\n\s*/g, ' ')} (see --help)\n`,
        ),
    })
    .showSuggestionAfterError()
    .addHelpText(
      'after',
      `\nRun "pushgate <command> --help" for a command's options; "pushgate serve --help" lists every server setting.\n${EXIT_CODES_HELP}`,
    );
  program
    .command('serve')
    .description('run a pushgate node (what npm start runs); takes every server flag and PUSHGATE_* variable')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments();
  for (const command of [
    definePush(program, withNode),
    defineSessions(program, withNode),
    definePresence(program, withNode),
    defineKick(program, withNode),
    defineInbox(program, withNode),
    defineInboxDelete(program, withNode),
    defineMessage(program, withNode),
    defineReceipts(program, withNode),
  ]) {
    addConnectionOptions(command).addHelpText('after', EXIT_CODES_HELP);
  }
  defineToken(program, process.env).addHelpText('after', EXIT_CODES_HELP);
  return program;
}

function packageVersion(): string {
  // The same relative path from src/cli and dist/cli.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv[0] === 'serve') {
    // Loaded only here: the other commands start fast without the server's modules.
    const { serve } = await import('../serve.js');
    serve(argv.slice(1), process.env, 'pushgate serve');
    return;
  }
  try {
    await buildProgram().parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version exit 0; any other commander error already printed its line.
      process.exitCode = err.exitCode === 0 ? 0 : USAGE_EXIT_CODE;
      return;
    }
    const { line, exitCode } = describeFailure(err);
    fail(line, exitCode);
  }
}

await main(process.argv.slice(2));
