import { MemorySessionRegistry } from '../../src/registry/memory-registry.js';
import { describeSessionRegistry } from './session-registry.contract.js';

describeSessionRegistry('MemorySessionRegistry', async (options) => new MemorySessionRegistry(options));
