#!/usr/bin/env node
// The `parley` command: loads the TypeScript CLI through tsx so `npx parley` works right after `npm ci`.
import { register } from 'tsx/esm/api';

register();
await import('../services/cli/main.ts');
