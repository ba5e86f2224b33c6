#!/usr/bin/env node
import { serve } from './serve.js';

/** The server entry (`node dist/main.js`, the container's command); `pushgate serve` runs the same. */
serve(process.argv.slice(2), process.env);
