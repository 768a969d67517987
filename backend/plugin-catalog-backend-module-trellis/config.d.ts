import type { SchedulerServiceTaskScheduleDefinitionConfig } from '@backstage/backend-plugin-api';

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
    };
  };
}
