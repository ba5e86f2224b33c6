// tsc emits only JavaScript; the registry's Lua scripts are read at run time next to the compiled
// module (dist/registry/lua), so the build copies them there.
import { cpSync } from 'node:fs';

cpSync(new URL('../src/registry/lua', import.meta.url), new URL('../dist/registry/lua', import.meta.url), { recursive: true });
