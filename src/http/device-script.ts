import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';

/**
 * packages/device's browser build, as built by `npm run build`. The same relative path from
 * src/http (tsx, tests) and dist/http (the build, the container's /app/dist/http).
 */
export const DEVICE_SCRIPT_FILE = new URL('../../packages/device/dist/core.js', import.meta.url);

/** Long enough to spare a page's reloads a request, short enough that a new node version is picked up soon. */
const CACHE_SECONDS = 300;

/**
 * GET /device.js: the device library (@pushgate/device's dist/core.js, an ES module that uses the
 * page's global `io` from /socket.io/socket.io.js). It is a public client library holding nothing
 * of the node's, so it is served whatever the demo page setting, with CORS open to any origin: a
 * module script from another site is fetched with CORS, and the file is no secret (the socket
 * itself still checks PUSHGATE_ALLOWED_ORIGINS).
 */
export class DeviceScript {
  private body: Promise<Buffer> | undefined;

  constructor(private readonly file: URL = DEVICE_SCRIPT_FILE) {}

  async send(res: ServerResponse): Promise<void> {
    const body = await this.read();
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end('/device.js is not built on this node: run `npm run build` (it builds packages/device/dist/core.js).\n');
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/javascript; charset=utf-8',
      'cache-control': `public, max-age=${CACHE_SECONDS}`,
      'access-control-allow-origin': '*',
      'x-content-type-options': 'nosniff',
    });
    res.end(body);
  }

  /** Read once; a missing file is not remembered, so a build made while the node runs is served. */
  private async read(): Promise<Buffer | undefined> {
    this.body ??= readFile(this.file);
    try {
      return await this.body;
    } catch (err) {
      this.body = undefined;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }
}
