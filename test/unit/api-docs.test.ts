import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/**
 * The API reference (docs/api.md) is generated from the .proto comments and committed, like src/gen
 * (CI checks that one with git): a proto change without `npm run gen` fails here already. The
 * client package's bindings are a copy of src/gen made on install (scripts/copy-client-gen.mjs).
 */

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function filesUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(join(ROOT, dir).length + 1))
    .sort();
}

describe('generated from proto/', () => {
  it('docs/api.md is up to date with the .proto comments', async () => {
    const check = await run(process.execPath, ['scripts/gen-api-docs.mjs', '--check'], { cwd: ROOT }).then(
      () => '',
      (err: { stderr: string }) => err.stderr,
    );
    expect(check).toBe('');
    const doc = readFileSync(join(ROOT, 'docs/api.md'), 'utf8');
    for (const name of ['PushToUser', 'ListSessions', 'WatchPresence', 'DisconnectSessions', 'PresenceEventKind', 'DeliveryStatus']) {
      expect(doc).toContain(`### ${name.includes('Kind') || name.includes('Status') ? name : `PushService.${name}`}`);
    }
    expect(doc).toContain('| `page_token` | `string` | 4 |');
  });

  it('the client package holds the same bindings as src/gen', () => {
    const engine = filesUnder('src/gen');
    expect(engine.length).toBeGreaterThan(3);
    expect(filesUnder('packages/client/src/gen')).toEqual(engine);
    for (const file of engine) {
      expect(readFileSync(join(ROOT, 'packages/client/src/gen', file), 'utf8'), file).toBe(
        readFileSync(join(ROOT, 'src/gen', file), 'utf8'),
      );
    }
  });
});
