/*
 * Backstage scaffolder module that adds `trellis:blueprint:render` (new backend system).
 * Adopters add one line to packages/backend/src/index.ts:
 *   backend.add(import('@trellis/plugin-scaffolder-backend-module-trellis'));
 */
import { coreServices, createBackendModule } from '@backstage/backend-plugin-api';
import { scaffolderActionsExtensionPoint } from '@backstage/plugin-scaffolder-node';
import { createTrellisRenderAction, readTrellisOptions } from './actions/render';

export {
  createTrellisRenderAction,
  readTrellisOptions,
  DEFAULT_TIMEOUT_SECONDS,
  type TrellisOptions,
} from './actions/render';

/** The scaffolder module; config is read at startup so a missing `trellis:` block fails fast. */
export const scaffolderModuleTrellis = createBackendModule({
  pluginId: 'scaffolder',
  moduleId: 'trellis',
  register(env) {
    env.registerInit({
      deps: {
        scaffolder: scaffolderActionsExtensionPoint,
        config: coreServices.rootConfig,
        logger: coreServices.logger,
      },
      async init({ scaffolder, config, logger }) {
        const options = readTrellisOptions(config);
        scaffolder.addActions(createTrellisRenderAction(options));
        logger.info(`trellis:blueprint:render renders through ${options.baseUrl}`);
      },
    });
  },
});

export default scaffolderModuleTrellis;
