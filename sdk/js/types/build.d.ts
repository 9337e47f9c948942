// Type declarations of `mr-sdk/build` (src/build.js): compiling a project to a component.

/** The WIT contract this SDK ships. */
export declare const WIT_PATH: string;

/** A build failure with a message for the user. */
export declare class BuildError extends Error {}

/** The project's job module path, from package.json's `"mr": {"job": ...}`. */
export declare function jobModule(project: string): Promise<string>;

/** Builds the project's component (default `DIR/target/mr/NAME.wasm`) and returns its path. */
export declare function buildProject(projectDir: string, output?: string): Promise<string>;

/** The `mr-sdk build` / `mr-sdk wit` command line; returns the exit status. */
export declare function main(argv: string[]): Promise<number>;
