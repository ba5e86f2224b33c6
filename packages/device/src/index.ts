import { io } from 'socket.io-client';
import { connect as connectWith } from './core.js';
import type { DeviceClient, DeviceOptions } from './types.js';

export { DeviceError } from './core.js';
export type * from './types.js';

/** Opens a device connection to a pushgate node, on the socket.io-client this package depends on (unless `options.io` says otherwise). */
export function connect<Events extends Record<string, unknown> = Record<string, unknown>>(options: DeviceOptions): DeviceClient<Events> {
  return connectWith<Events>({ ...options, io: options.io ?? io });
}
