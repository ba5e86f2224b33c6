// tsc emits only JavaScript; the Lua scripts are read at run time next to the compiled modules
// (dist/<room>/lua), so the build copies every src/<room>/lua folder there.
import { cpSync, existsSync, readdirSync } from 'node:fs';

const src = new URL('../src/', import.meta.url);
const dist = new URL('../dist/', import.meta.url);
for (const room of readdirSync(src)) {
  const lua = new URL(`${room}/lua`, src);
  if (existsSync(lua)) cpSync(lua, new URL(`${room}/lua`, dist), { recursive: true });
}
