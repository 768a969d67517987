/**
 * How the plugin reaches Trellis: through Backstage's proxy (`proxy.endpoints['/trellis']`),
 * found by discovery, with the signed-in user's Backstage credentials. Trellis's own token
 * stays in the proxy's config on the backend; the browser never holds it.
 */
import {
  createApiRef,
  type DiscoveryApi,
  type FetchApi,
} from '@backstage/core-plugin-api';
import type { BlueprintCurrency, ObservabilityPage } from './types';

export interface TrellisApi {
  /** Golden signals and training history of one entity over the last `range`. */
  getObservability(
    entity: { namespace: string; kind: string; name: string },
    options?: { range?: string; step?: string },
  ): Promise<ObservabilityPage>;
  /** How far a generated repository's entity is behind its blueprint, and its update request. */
  getBlueprintCurrency(entity: {
    namespace: string;
    kind: string;
    name: string;
  }): Promise<BlueprintCurrency>;
}

export const trellisApiRef = createApiRef<TrellisApi>({ id: 'plugin.trellis.service' });

/** The proxy endpoint the adopter configures; `/trellis` unless told otherwise. */
export const DEFAULT_PROXY_PATH = '/trellis';

export class TrellisClient implements TrellisApi {
  /** Requests under way, by URL: the cards of one entity page share one request. */
  private readonly inFlight = new Map<string, Promise<ObservabilityPage>>();

  constructor(
    private readonly deps: {
      discoveryApi: DiscoveryApi;
      fetchApi: FetchApi;
      proxyPath?: string;
    },
  ) {}

  async getObservability(
    entity: { namespace: string; kind: string; name: string },
    options: { range?: string; step?: string } = {},
  ): Promise<ObservabilityPage> {
    const query = new URLSearchParams({ range: options.range ?? '1h' });
    if (options.step) {
      query.set('step', options.step);
    }
    const url = `${await this.entityUrl('/api/observability', entity)}?${query}`;
    let page = this.inFlight.get(url);
    if (!page) {
      page = this.fetchJson<ObservabilityPage>(url).finally(() => this.inFlight.delete(url));
      this.inFlight.set(url, page);
    }
    return page;
  }

  async getBlueprintCurrency(entity: {
    namespace: string;
    kind: string;
    name: string;
  }): Promise<BlueprintCurrency> {
    return this.fetchJson<BlueprintCurrency>(
      await this.entityUrl('/api/blueprints/currency', entity),
    );
  }

  /** `{proxy}/trellis{route}/{namespace}/{kind}/{name}`, each part encoded. */
  private async entityUrl(
    route: string,
    entity: { namespace: string; kind: string; name: string },
  ): Promise<string> {
    const proxy = await this.deps.discoveryApi.getBaseUrl('proxy');
    const path = [entity.namespace, entity.kind.toLocaleLowerCase('en-US'), entity.name]
      .map(encodeURIComponent)
      .join('/');
    return `${proxy}${this.deps.proxyPath ?? DEFAULT_PROXY_PATH}${route}/${path}`;
  }

  private async fetchJson<T>(url: string): Promise<T> {
    const response = await this.deps.fetchApi.fetch(url);
    if (!response.ok) {
      let detail = response.statusText;
      try {
        const body = await response.json();
        detail = typeof body?.detail === 'string' ? body.detail : JSON.stringify(body?.detail ?? body);
      } catch {
        // not JSON: the status text says enough
      }
      throw new Error(`Trellis answered ${response.status}: ${detail}`);
    }
    return (await response.json()) as T;
  }
}
