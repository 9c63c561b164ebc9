#!/usr/bin/env -S node --max-semi-space-size=64
// The `parley` command: loads the TypeScript CLI through tsx so `npx parley` works right after `npm ci`.
// A young generation of up to 64 MB semi-spaces (V8's default is 16): rollout workers keep many episodes'
// messages alive for seconds, and with small semi-spaces each scavenge copies them again, stalling every
// episode's next step (bench/RESULTS.md, "Young-generation size"). The image's entrypoint passes the same flag.
import { register } from 'tsx/esm/api';

register();
await import('../services/cli/main.ts');
