#!/usr/bin/env node
// The SDK's command line:
//   mr-sdk build DIR [-o OUT]     compile a job project to a component (build.js; `mr-host build` runs it)
//   mr-sdk run JOB -i FILE...     run a job natively over files and print its output (run.js)
//   mr-sdk wit                    print the path of the WIT contract this SDK ships
// Each command loads only what it needs: `run` works without esbuild and componentize-js.
const [command, ...rest] = process.argv.slice(2);
if (command === 'run') {
  const { runCommand } = await import('./run.js');
  process.exitCode = await runCommand(rest);
} else {
  const { main } = await import('./build.js');
  process.exitCode = await main(process.argv.slice(2));
}
