// The client package publishes the same generated bindings as the engine's src/gen. One copy is
// committed (src/gen, from `npm run gen`); the package's is made from it on install (`prepare`),
// by `npm run gen`, and by the package's own build, so the two can never drift apart.
import { cpSync, rmSync } from 'node:fs';

const from = new URL('../src/gen/', import.meta.url);
const to = new URL('../packages/client/src/gen/', import.meta.url);
rmSync(to, { recursive: true, force: true });
cpSync(from, to, { recursive: true });
