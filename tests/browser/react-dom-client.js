/*
 * `react-dom/client` as an ES module with named exports. esbuild gives a dynamic `import()`
 * of a CommonJS module a default export only, and TechDocs renders its add-ons through
 * `import('react-dom/client')` and looks for `createRoot` on what it gets (build.js aliases
 * `react-dom/client` here; this file imports the package's own file by path).
 */
import * as client from './node_modules/react-dom/client.js';

export const createRoot = client.createRoot;
export const hydrateRoot = client.hydrateRoot;
export default client;
