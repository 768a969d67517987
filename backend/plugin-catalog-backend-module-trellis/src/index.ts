/*
 * Backstage catalog module that adds the Trellis entity provider (new backend system).
 * Adopters add one line to packages/backend/src/index.ts:
 *   backend.add(import('@trellis/plugin-catalog-backend-module-trellis'));
 * and a `trellis.catalog` block to app-config.yaml (see config.d.ts).
 */
import {
  coreServices,
  createBackendModule,
  readSchedulerServiceTaskScheduleDefinitionFromConfig,
  type RootConfigService,
  type SchedulerServiceTaskScheduleDefinition,
} from '@backstage/backend-plugin-api';
import { durationToMilliseconds } from '@backstage/types';
import { readDurationFromConfig } from '@backstage/config';
import { catalogProcessingExtensionPoint } from '@backstage/plugin-catalog-node';
import { TrellisEntityProvider, type TrellisProviderOptions } from './provider';

export { TrellisEntityProvider, parseItems, type ReadOutcome } from './provider';

/** Default schedule: a read every 5 s costs one 304 (a few ms) when nothing changed. */
export const DEFAULT_SCHEDULE: SchedulerServiceTaskScheduleDefinition = {
  frequency: { seconds: 5 },
  timeout: { seconds: 30 },
};

/**
 * Default wait before an answer with no entities empties the catalog: as long as Trellis's
 * own hold on a drop to zero (TRELLIS_CATALOG__DROP_CONFIRM_SECONDS).
 */
export const DEFAULT_CONFIRM_EMPTY_MS = 60 * 60 * 1000;

/** The provider's options and schedule, or undefined when `trellis.catalog` is absent. */
export function readProviderConfig(
  config: RootConfigService,
): { options: TrellisProviderOptions; schedule: SchedulerServiceTaskScheduleDefinition } | undefined {
  const block = config.getOptionalConfig('trellis.catalog');
  if (!block) {
    return undefined;
  }
  const baseUrl = config.getString('trellis.baseUrl').replace(/\/+$/, '');
  let url: URL | undefined;
  try {
    url = new URL(baseUrl);
  } catch {
    url = undefined;
  }
  if (url?.username || url?.password) {
    // fetch() refuses such a URL with an error that repeats it, password and all, into the
    // logs; the message here names neither.
    throw new Error('trellis.baseUrl must not carry credentials: set trellis.token instead');
  }
  if (url?.protocol !== 'http:' && url?.protocol !== 'https:') {
    // Quoted without any userinfo: a URL that does not parse was never checked for it.
    const shown = baseUrl.replace(/\/\/[^/]*@/, '//');
    throw new Error(`trellis.baseUrl must be an http(s) URL, got ${JSON.stringify(shown)}`);
  }
  const schedule = block.has('schedule')
    ? readSchedulerServiceTaskScheduleDefinitionFromConfig(block.getConfig('schedule'))
    : DEFAULT_SCHEDULE;
  const timeout = schedule.timeout as { seconds?: number } | undefined;
  return {
    options: {
      baseUrl,
      token: config.getString('trellis.token'),
      timeoutMs: Math.max(1, timeout?.seconds ?? 30) * 1000,
      confirmEmptyMs: block.has('confirmEmptyAfter')
        ? durationToMilliseconds(readDurationFromConfig(block, { key: 'confirmEmptyAfter' }))
        : DEFAULT_CONFIRM_EMPTY_MS,
    },
    schedule,
  };
}

/** The catalog module; config is read at startup so a bad `trellis:` block fails fast. */
export const catalogModuleTrellis = createBackendModule({
  pluginId: 'catalog',
  moduleId: 'trellis-entity-provider',
  register(env) {
    env.registerInit({
      deps: {
        catalog: catalogProcessingExtensionPoint,
        config: coreServices.rootConfig,
        logger: coreServices.logger,
        scheduler: coreServices.scheduler,
      },
      async init({ catalog, config, logger, scheduler }) {
        const read = readProviderConfig(config);
        if (!read) {
          logger.info('trellis.catalog is not configured: no Trellis entity provider');
          return;
        }
        const provider = new TrellisEntityProvider(read.options, logger);
        catalog.addEntityProvider(provider);
        await scheduler.scheduleTask({
          id: `${provider.getProviderName()}:read`,
          ...read.schedule,
          fn: async () => {
            await provider.read();
          },
        });
        logger.info(`Trellis entity provider reads ${read.options.baseUrl}/catalog/entities`);
      },
    });
  },
});

export default catalogModuleTrellis;
