#!/usr/bin/env node
// Thin entry: everything lives in src/cli.ts (built to dist/).
import { main } from '../dist/cli.js';

main(process.argv.slice(2));
