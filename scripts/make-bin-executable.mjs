// tsc writes dist/cli/pushgate.js without the execute bit; `npx pushgate` from the checkout runs
// the package's bin through a shell, which then refuses it ("Permission denied"). npm sets the bit
// only when it links the bin (npm link, a dependent's install), so the build sets it itself.
import { chmodSync } from 'node:fs';

chmodSync(new URL('../dist/cli/pushgate.js', import.meta.url), 0o755);
