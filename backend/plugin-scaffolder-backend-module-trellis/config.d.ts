/** Configuration of the Trellis scaffolder module (`trellis:blueprint:render`). */
export interface Config {
  trellis: {
    /**
     * Base URL of the Trellis backend, e.g. http://trellis.internal:8080.
     * The action posts to `<baseUrl>/api/blueprints/<name>/render`.
     */
    baseUrl: string;
    /**
     * A bearer token from the backend's TRELLIS_API_TOKENS.
     * @visibility secret
     */
    token: string;
    /**
     * Seconds to wait for one rendering before the step fails; default 120.
     */
    timeoutSeconds?: number;
  };
}
