import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type NodeProcess, startNodeProcess, stopAllNodes } from '../support/node-process.js';
import { waitFor } from '../support/wait.js';

/**
 * The README's five-minute walkthrough, run as written: its shell commands and its client snippet
 * are read out of README.md, so the README cannot drift from the code. Only what a test must
 * change is changed: the node listens on free ports (PUSHGATE_GRPC_PORT tells the pushgate
 * command where; `localhost:3000` becomes the node's HTTP port), and the demo page's two tabs of
 * step 2 are two Socket.IO clients that ack like the page does.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const walkthrough = readme.slice(
  readme.indexOf('## Five-minute walkthrough'),
  readme.indexOf('\n## ', readme.indexOf('## Five-minute walkthrough') + 5),
);

/** The fenced blocks of the walkthrough in the given language, in order. */
function blocks(language: string): string[] {
  return [...walkthrough.matchAll(new RegExp(`\`\`\`${language}\\n([\\s\\S]*?)\`\`\``, 'g'))].map((m) => m[1]!.replace(/^ {3}/gm, ''));
}

/** The one walkthrough command that starts with `prefix` (comments and continuation lines joined). */
function command(prefix: string): string {
  const lines = blocks('sh')
    .join('\n')
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith(prefix));
  expect(lines, `exactly one walkthrough command starting with "${prefix}"`).toHaveLength(1);
  return lines[0]!;
}

let node: NodeProcess;
let env: NodeJS.ProcessEnv;
let scratch: string;
const children: ChildProcess[] = [];
const tabs: Socket[] = [];

beforeAll(async () => {
  // `npx pushgate` runs the package's bin from dist/, as a reader's checkout would after npm install.
  await run('npm', ['run', 'build'], { cwd: ROOT });
  // Step 1 (npm start) is `pushgate serve --dev`; here on free ports.
  node = await startNodeProcess({}, ['--dev']);
  env = { ...process.env, PUSHGATE_GRPC_PORT: String(node.grpcPort) };
  // Inside the checkout, so the snippet's `import 'socket.io-client'` resolves as in the reader's folder.
  scratch = mkdtempSync(join(ROOT, '.readme-walkthrough-'));
}, 120_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  for (const tab of tabs) tab.close();
  await stopAllNodes();
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

function localPorts(line: string): string {
  return line.replaceAll('localhost:3000', `127.0.0.1:${node.httpPort}`);
}

/** Runs a walkthrough command in a shell, as a reader pastes it; resolves with its output. */
async function shell(line: string): Promise<string> {
  const { stdout } = await run('bash', ['-c', localPorts(line)], { cwd: ROOT, env, timeout: 30_000 });
  return stdout;
}

/**
 * Starts a long-running walkthrough command and collects what it prints. Reading the output of one
 * that already exited throws with that output: the failure then says why, not just "timed out".
 */
function background(file: string, args: string[]): { output: () => string; child: ChildProcess } {
  const child = spawn(file, args, { cwd: ROOT, env });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const read = (): string => {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited ${child.exitCode}:\n${output}`);
    return output;
  };
  return { output: read, child };
}

it('runs the five-minute walkthrough as the README writes it', async () => {
  // 2. Two tabs of user 61 (web, pc) that ack every notice, as the demo page does.
  for (const clientType of ['web', 'pc']) {
    const tab = await node.connect('61', clientType);
    tab.on('notice', (_data: unknown, ack?: (reply: unknown) => void) => ack?.({ ok: true, by: clientType }));
    tabs.push(tab);
  }

  // 3. Presence, left running.
  const presence = background('bash', ['-c', command('npx pushgate presence')]);
  await waitFor('the presence snapshot', () => presence.output().includes('SNAPSHOT_COMPLETE'), { timeoutMs: 20_000 });

  // 4. A token from the dev endpoint, and the client snippet saved as client.mjs.
  const { token } = JSON.parse(await shell(command("curl 'http://localhost:3000/dev/token"))) as { token: string };
  const [snippet] = blocks('js');
  expect(snippet).toContain("io('http://localhost:3000'");
  writeFileSync(join(scratch, 'client.mjs'), localPorts(snippet!));
  const client = background(process.execPath, [join(scratch, 'client.mjs'), token]);
  await waitFor('the client to connect', () => client.output().includes('connected as session'), { timeoutMs: 20_000 });
  await waitFor('presence to see the client', () => presence.output().includes('client-type=app'), { timeoutMs: 10_000 });

  // 5. The push: three sessions, three ACKED rows; a fire-and-forget push must not crash the snippet.
  const pushed = await shell(command('npx pushgate push'));
  expect(pushed.match(/ACKED/g)).toHaveLength(3);
  expect(pushed).toMatch(/3 sessions, 3 acked/);
  expect(pushed).toContain('"read":true');
  const noAck = await shell(`${command('npx pushgate push')} --no-ack`);
  expect(noAck.match(/SENT/g)).toHaveLength(3);
  await waitFor('the client to log both notices', () => client.output().split('notice').length - 1 >= 2);
  // output() throws if the snippet crashed on the fire-and-forget push.
  expect(client.output()).not.toMatch(/TypeError|Error:/);

  // 6. List and kick.
  const sessions = await shell(command('npx pushgate sessions'));
  for (const clientType of ['web', 'pc', 'app']) expect(sessions).toContain(clientType);
  await shell(command('npx pushgate kick'));
  await waitFor('the kick on the presence stream', () => /SESSION_DISCONNECTED.*reason=kicked/.test(presence.output()));
  await waitFor('the web tab to be closed', () => !tabs[0]!.connected);
  expect(tabs[1]!.connected).toBe(true);
}, 120_000);
