/*
 * Bundles the test app (app/index.tsx) into build/ with esbuild: one ES module with split
 * chunks for lazy extensions, its CSS, and index.html. Trellis's plugin is compiled from its
 * sources (frontend/plugin-trellis/src), resolving its packages from this folder's
 * node_modules, so the app holds one copy of React and of each @backstage/* package.
 *
 * Usage: node build.js [outdir]     (or --link-only: only link the plugin's node_modules)
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const esbuild = require('esbuild');

const here = __dirname;
const pluginDir = path.resolve(here, '../../frontend/plugin-trellis');
const outdir = path.resolve(process.argv[2] ?? path.join(here, 'build'));

/** The plugin resolves its imports here, as a workspace package would from the root. */
function linkPluginModules() {
  const link = path.join(pluginDir, 'node_modules');
  const target = path.relative(pluginDir, path.join(here, 'node_modules'));
  try {
    if (fs.readlinkSync(link) === target) return;
    fs.unlinkSync(link);
  } catch (error) {
    if (error.code !== 'ENOENT') throw error;
  }
  fs.symlinkSync(target, link);
}

async function main() {
  linkPluginModules();
  if (process.argv[2] === '--link-only') return;
  fs.rmSync(outdir, { recursive: true, force: true });
  const started = Date.now();
  await esbuild.build({
    entryPoints: { index: path.join(here, 'app/index.tsx') },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: false,
    jsx: 'automatic',
    alias: {
      '@trellis/backstage-plugin-trellis': path.join(pluginDir, 'src/index.ts'),
      // The catalog's CSV export imports the Node build; the package ships a browser one.
      'csv-stringify/lib/sync': path.join(here, 'node_modules/csv-stringify/lib/browser/sync.js'),
      // TechDocs looks for named exports on a dynamic import of it (see the file).
      'react-dom/client': path.join(here, 'react-dom-client.js'),
    },
    define: {
      'process.env.NODE_ENV': '"production"',
      'process.env.APP_CONFIG': '[]',
      // Set by Backstage's CLI: TechDocs renders with react-dom/client when it exists (React 18).
      'process.env.HAS_REACT_DOM_CLIENT': 'true',
      global: 'globalThis',
    },
    loader: {
      '.svg': 'file',
      '.png': 'file',
      '.woff': 'file',
      '.woff2': 'file',
      '.ttf': 'file',
      '.eot': 'file',
    },
    logLevel: 'warning',
  });
  fs.copyFileSync(path.join(here, 'app/index.html'), path.join(outdir, 'index.html'));
  if (!fs.existsSync(path.join(outdir, 'index.css'))) {
    fs.writeFileSync(path.join(outdir, 'index.css'), '');
  }
  console.log(`built ${outdir} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});
