#!/usr/bin/env node
// `mr-sdk build DIR [-o OUT]`: see build.js.
import { main } from './build.js';

process.exitCode = await main(process.argv.slice(2));
