// A module resolution hook for `mr-sdk run` (registered with node:module's register): `mr-sdk`
// and `mr-sdk/testing` resolve to the SDK doing the run, as they do in `mr-sdk build`, so a job
// runs natively before `npm install` too, with the same SDK that runs it.
const SELF = {
  'mr-sdk': new URL('./index.js', import.meta.url).href,
  'mr-sdk/testing': new URL('./testing.js', import.meta.url).href,
};

export async function resolve(specifier, context, next) {
  const url = SELF[specifier];
  return url ? { url, shortCircuit: true } : next(specifier, context);
}
