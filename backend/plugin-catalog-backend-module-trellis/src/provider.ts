/*
 * The Trellis entity provider: reads Trellis's served catalog and applies it as one full
 * mutation, so a model deleted from MLflow leaves Backstage at the next read. Backstage
 * deletes whatever a full mutation leaves out, so nothing but a complete, well-formed 200
 * answer is ever applied: a Trellis that is down, slow, answering 5xx or 503 (no snapshot
 * yet, or a held drop) leaves the entities exactly as they are. A 304 changes nothing.
 * An answer with no entities at all is held until answers keep saying so for
 * `confirmEmptyMs`: a Trellis started on a fresh state against a wrong but reachable registry
 * has no snapshot to hold a drop against, and would otherwise empty the catalog.
 */
import {
  ANNOTATION_LOCATION,
  ANNOTATION_ORIGIN_LOCATION,
  type Entity,
} from '@backstage/catalog-model';
import type { LoggerService } from '@backstage/backend-plugin-api';
import type {
  EntityProvider,
  EntityProviderConnection,
} from '@backstage/plugin-catalog-node';

/** Where Trellis is, how to authenticate, and how long one read may take. */
export interface TrellisProviderOptions {
  baseUrl: string;
  token: string;
  timeoutMs: number;
  /** How long answers with no entities must repeat before the catalog is emptied. */
  confirmEmptyMs: number;
}

/**
 * Largest answer read: Trellis's catalog of 10,000 models is a few MB of JSON, so this leaves
 * ample room while keeping a misbehaving upstream from filling the backend's memory.
 */
export const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

/** What one read did; returned for logs and tests. */
export type ReadOutcome =
  | { kind: 'applied'; entities: number; etag: string | null }
  | { kind: 'unchanged' }
  | { kind: 'kept'; reason: string };

type Fetched =
  | { kind: 'fetched'; entities: Entity[]; etag: string | null }
  | { kind: 'unchanged' }
  | { kind: 'kept'; reason: string };

/** The provider; `read` is what the schedule runs. */
export class TrellisEntityProvider implements EntityProvider {
  private connection?: EntityProviderConnection;
  private etag: string | null = null;
  /** When the answers started to have no entities (milliseconds), while they still do. */
  private emptySince: number | null = null;
  private readonly location: string;

  constructor(
    private readonly options: TrellisProviderOptions,
    private readonly logger: LoggerService,
    private readonly now: () => number = Date.now,
  ) {
    this.location = `url:${options.baseUrl}/catalog/entities`;
  }

  getProviderName(): string {
    return `trellis:${new URL(this.options.baseUrl).host}`;
  }

  async connect(connection: EntityProviderConnection): Promise<void> {
    this.connection = connection;
  }

  /** One read of Trellis's catalog; the entities change only on a complete 200 answer. */
  async read(): Promise<ReadOutcome> {
    if (!this.connection) {
      return { kind: 'kept', reason: 'the catalog has not connected the provider yet' };
    }
    const outcome = this.holdEmpty(await this.fetchEntities());
    if (outcome.kind === 'kept') {
      this.logger.warn(`Trellis catalog not read, entities kept as they are: ${outcome.reason}`);
      return outcome;
    }
    if (outcome.kind === 'unchanged') {
      return outcome;
    }
    await this.connection.applyMutation({
      type: 'full',
      entities: outcome.entities.map(entity => ({
        entity: this.located(entity),
        locationKey: this.location,
      })),
    });
    // Remembered only once applied: a failed apply is read again in full next time.
    this.etag = outcome.etag;
    this.logger.info(`Trellis catalog applied: ${outcome.entities.length} entities`);
    return { kind: 'applied', entities: outcome.entities.length, etag: outcome.etag };
  }

  /**
   * An answer with no entities becomes `kept` until such answers have lasted long enough.
   * An answer with entities ends the wait, and so does a 304: it confirms the entities
   * last applied (behind one Service, a good replica and a misled one may take turns).
   */
  private holdEmpty(outcome: Fetched): Fetched {
    if (outcome.kind === 'kept') {
      return outcome;
    }
    if (outcome.kind === 'unchanged' || outcome.entities.length > 0) {
      this.emptySince = null;
      return outcome;
    }
    const now = this.now();
    this.emptySince ??= now;
    const confirmsAt = this.emptySince + this.options.confirmEmptyMs;
    if (now >= confirmsAt) {
      return outcome;
    }
    return {
      kind: 'kept',
      reason:
        `Trellis answered with no entities; held until ${new Date(confirmsAt).toISOString()} ` +
        '(trellis.catalog.confirmEmptyAfter), unless an answer with entities comes first',
    };
  }

  private async fetchEntities(): Promise<Fetched> {
    const headers: Record<string, string> = {
      Accept: 'application/json',
      Authorization: `Bearer ${this.options.token}`,
    };
    if (this.etag) {
      headers['If-None-Match'] = this.etag;
    }
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${this.options.baseUrl}/catalog/entities`, {
        headers,
        redirect: 'error',
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      if (response.status === 304) {
        return { kind: 'unchanged' };
      }
      const body = await readCapped(response, MAX_ANSWER_BYTES);
      if (body === undefined) {
        return { kind: 'kept', reason: `the answer is larger than ${MAX_ANSWER_BYTES} bytes` };
      }
      text = body;
    } catch (error) {
      // The error names the host at most; the token travels only in a header.
      return { kind: 'kept', reason: describe(error, this.options.timeoutMs) };
    }
    if (response.status !== 200) {
      return { kind: 'kept', reason: `Trellis answered ${response.status}` };
    }
    const entities = parseItems(text);
    if (typeof entities === 'string') {
      return { kind: 'kept', reason: entities };
    }
    return { kind: 'fetched', entities, etag: response.headers.get('etag') };
  }

  private located(entity: Entity): Entity {
    return {
      ...entity,
      metadata: {
        ...entity.metadata,
        annotations: {
          ...entity.metadata.annotations,
          [ANNOTATION_LOCATION]: this.location,
          [ANNOTATION_ORIGIN_LOCATION]: this.location,
        },
      },
    };
  }
}

/** The body as text, or undefined (and the read stopped) once it passes `limit` bytes. */
async function readCapped(response: Response, limit: number): Promise<string | undefined> {
  if (Number(response.headers.get('content-length') ?? 0) > limit) {
    await response.body?.cancel();
    return undefined;
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.byteLength;
    if (size > limit) {
      return undefined; // leaving the loop cancels the rest of the stream
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The entities of a `{"items": [...]}` answer, or why the answer cannot be applied. */
export function parseItems(text: string): Entity[] | string {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return 'the answer is not JSON';
  }
  const items = (body as { items?: unknown } | null)?.items;
  if (!Array.isArray(items)) {
    return 'the answer has no items list';
  }
  // One malformed envelope would make the whole mutation fail; then nothing is applied.
  const malformed = items.findIndex(item => !isEnvelope(item));
  if (malformed >= 0) {
    return `item ${malformed} is not an entity (apiVersion, kind, metadata.name)`;
  }
  return items as Entity[];
}

function isEnvelope(item: unknown): item is Entity {
  if (typeof item !== 'object' || item === null) {
    return false;
  }
  const { apiVersion, kind, metadata } = item as Record<string, unknown>;
  return (
    typeof apiVersion === 'string' &&
    typeof kind === 'string' &&
    typeof metadata === 'object' &&
    metadata !== null &&
    typeof (metadata as Record<string, unknown>).name === 'string'
  );
}

function describe(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return `no answer within ${timeoutMs / 1000} s`;
  }
  const cause = (error as { cause?: { code?: string } })?.cause?.code;
  const message = error instanceof Error ? error.message : String(error);
  return cause ? `${message} (${cause})` : message;
}
