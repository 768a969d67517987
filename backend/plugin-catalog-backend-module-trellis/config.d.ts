import type { SchedulerServiceTaskScheduleDefinitionConfig } from '@backstage/backend-plugin-api';
import type { HumanDuration } from '@backstage/types';

/** Configuration of the Trellis catalog entity provider. */
export interface Config {
  trellis: {
    /**
     * Base URL of the Trellis backend, e.g. http://trellis.internal:8080.
     * The provider reads `<baseUrl>/catalog/entities`.
     */
    baseUrl: string;
    /**
     * A bearer token from the backend's TRELLIS_API_TOKENS (needed when
     * TRELLIS_CATALOG__REQUIRES_TOKEN is on; sent in a header, never in a URL).
     * @visibility secret
     */
    token: string;
    /** The entity provider; without this block the module adds nothing. */
    catalog?: {
      /**
       * How often to read Trellis; default every 5 seconds with a 30-second timeout.
       * A read that changed nothing costs one 304.
       */
      schedule?: SchedulerServiceTaskScheduleDefinitionConfig;
      /**
       * How long Trellis's answers must keep having no entities at all before the provider
       * empties the catalog (default 1 hour, e.g. { minutes: 10 } or 'PT10M'). Until then
       * the entities stay and each read logs why: a Trellis on a fresh state pointed at a
       * wrong but reachable registry answers "no models" with no snapshot to hold against.
       */
      confirmEmptyAfter?: HumanDuration | string;
    };
  };
}
