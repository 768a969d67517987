/*
 * A real Backstage backend for the Trellis test suite.
 *
 * Usage: node backend.js --config app-config.yaml [--config more.yaml]
 *
 * Plugins: catalog (with the scaffolder entity model, so Template entities
 * are accepted) and proxy (`proxy.endpoints` in the config; without any it
 * serves nothing). A small catalog module subscribes to the
 * `experimental.catalog.errors` events topic and appends every event payload
 * as one JSON line to the file named by TRELLIS_CATALOG_ERRORS_FILE, because
 * entities that fail validation are otherwise only visible in the logs.
 *
 * With TRELLIS_SCAFFOLDER_MODULE=1 it also adds the scaffolder and what an
 * adopter's scaffolder has for the Trellis Software Templates (without them a
 * start costs less CPU): the Trellis scaffolder module
 * (backend/plugin-scaffolder-backend-module-trellis, compiled to dist/ by
 * `npm run build-module`; it needs a `trellis:` config block) and the GitHub
 * module (publish:github). The Trellis module's @backstage/* imports resolve
 * through NODE_PATH to this folder's node_modules.
 *
 * With TRELLIS_CATALOG_PROVIDER=1 it adds the Trellis catalog entity provider
 * (backend/plugin-catalog-backend-module-trellis, compiled to dist/ by
 * `npm run build-provider`; it reads the `trellis.catalog` config block).
 *
 * With a `kubernetes` block in the config (TRELLIS_KUBERNETES_BACKEND=1) it adds
 * the Kubernetes backend plugin, with a `techdocs` block
 * (TRELLIS_TECHDOCS_BACKEND=1) the TechDocs backend plugin, and with an `auth`
 * block (TRELLIS_AUTH_BACKEND=1) the auth backend with its guest provider, so
 * a browser's guest has a Backstage token (TechDocs serves its pages only with
 * a user's cookie): the browser test's app needs them; other tests start
 * faster without.
 *
 * A small `discovery-probe` plugin answers GET /api/discovery-probe/<pluginId>
 * with `{"baseUrl", "externalBaseUrl"}` from the backend's discovery service,
 * so tests can see where `discovery.endpoints` sends a plugin id (Backstage's
 * frontend reads the same config; the external URL is the one it uses).
 *
 * Prints `TRELLIS_BACKSTAGE_READY` once all plugins have started;
 * GET /.backstage/health/v1/readiness answers 200 from then on as well.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { createBackend } = require('@backstage/backend-defaults');
const {
  coreServices,
  createBackendModule,
  createBackendPlugin,
} = require('@backstage/backend-plugin-api');
const { eventsServiceRef } = require('@backstage/plugin-events-node');

const CATALOG_ERRORS_TOPIC = 'experimental.catalog.errors';
const TRELLIS_MODULE_DIR = path.resolve(
  __dirname,
  '../../backend/plugin-scaffolder-backend-module-trellis/dist',
);
const TRELLIS_PROVIDER_DIR = path.resolve(
  __dirname,
  '../../backend/plugin-catalog-backend-module-trellis/dist',
);
const READY_MARKER = 'TRELLIS_BACKSTAGE_READY';

/** Turns an Error (or anything thrown) into plain JSON-friendly data. */
function serializeError(error, depth = 0) {
  if (error === null || error === undefined) {
    return error;
  }
  if (typeof error !== 'object') {
    return { name: 'Error', message: String(error) };
  }
  const out = {
    name: error.name ?? 'Error',
    message: error.message ?? String(error),
  };
  for (const [key, value] of Object.entries(error)) {
    if (key === 'cause' || key === 'stack' || key in out) {
      continue;
    }
    try {
      JSON.stringify(value);
      out[key] = value;
    } catch {
      out[key] = String(value);
    }
  }
  if (error.cause !== undefined && depth < 5) {
    out.cause = serializeError(error.cause, depth + 1);
  }
  return out;
}

function serializePayload(payload) {
  if (payload === null || typeof payload !== 'object') {
    return payload;
  }
  const out = { ...payload };
  if (Array.isArray(payload.errors)) {
    out.errors = payload.errors.map(e => serializeError(e));
  }
  return out;
}

const catalogErrorsLogModule = createBackendModule({
  pluginId: 'catalog',
  moduleId: 'trellis-errors-log',
  register(env) {
    env.registerInit({
      deps: {
        events: eventsServiceRef,
        logger: coreServices.logger,
      },
      async init({ events, logger }) {
        const target = process.env.TRELLIS_CATALOG_ERRORS_FILE;
        if (!target) {
          logger.info(
            'TRELLIS_CATALOG_ERRORS_FILE is not set; catalog errors are not recorded',
          );
          return;
        }
        fs.mkdirSync(path.dirname(path.resolve(target)), { recursive: true });
        fs.appendFileSync(target, '');
        await events.subscribe({
          id: 'trellis-errors-log',
          topics: [CATALOG_ERRORS_TOPIC],
          async onEvent(params) {
            const record = {
              topic: params.topic,
              receivedAt: new Date().toISOString(),
              ...serializePayload(params.eventPayload),
            };
            fs.appendFileSync(target, `${JSON.stringify(record)}\n`);
          },
        });
        logger.info(`Recording ${CATALOG_ERRORS_TOPIC} events in ${target}`);
      },
    });
  },
});

const discoveryProbePlugin = createBackendPlugin({
  pluginId: 'discovery-probe',
  register(env) {
    env.registerInit({
      deps: {
        discovery: coreServices.discovery,
        httpRouter: coreServices.httpRouter,
      },
      async init({ discovery, httpRouter }) {
        // A plain handler, so the harness needs no direct dependency on express.
        httpRouter.use((req, res, next) => {
          const match = /^\/([A-Za-z0-9_-]+)$/.exec(req.path);
          if (req.method !== 'GET' || !match) {
            next();
            return;
          }
          Promise.all([
            discovery.getBaseUrl(match[1]),
            discovery.getExternalBaseUrl(match[1]),
          ]).then(
            ([baseUrl, externalBaseUrl]) => res.json({ baseUrl, externalBaseUrl }),
            next,
          );
        });
      },
    });
  },
});

async function main() {
  const backend = createBackend();
  backend.add(require('@backstage/plugin-catalog-backend'));
  backend.add(
    require('@backstage/plugin-catalog-backend-module-scaffolder-entity-model'),
  );
  backend.add(require('@backstage/plugin-proxy-backend'));
  backend.add(discoveryProbePlugin);
  backend.add(catalogErrorsLogModule);
  if (process.env.TRELLIS_SCAFFOLDER_MODULE === '1') {
    backend.add(require('@backstage/plugin-scaffolder-backend'));
    backend.add(require('@backstage/plugin-scaffolder-backend-module-github'));
    backend.add(require(TRELLIS_MODULE_DIR));
  }
  if (process.env.TRELLIS_CATALOG_PROVIDER === '1') {
    backend.add(require(TRELLIS_PROVIDER_DIR));
  }
  if (process.env.TRELLIS_KUBERNETES_BACKEND === '1') {
    backend.add(require('@backstage/plugin-kubernetes-backend'));
  }
  if (process.env.TRELLIS_TECHDOCS_BACKEND === '1') {
    backend.add(require('@backstage/plugin-techdocs-backend'));
  }
  if (process.env.TRELLIS_AUTH_BACKEND === '1') {
    backend.add(require('@backstage/plugin-auth-backend'));
    backend.add(require('@backstage/plugin-auth-backend-module-guest-provider'));
  }
  await backend.start();
  // The logger writes to stdout as well; this line is the stable marker.
  process.stdout.write(`${READY_MARKER}\n`);
}

main().catch(error => {
  process.stderr.write(`Backstage backend failed to start: ${error?.stack ?? error}\n`);
  process.exit(1);
});
