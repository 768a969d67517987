/*
 * The `trellis:blueprint:render` action. Copier stays the only renderer: the Trellis backend
 * renders the blueprint, this action only moves the files into the workspace. It checks the
 * whole answer before writing, so a bad answer never leaves a half-written workspace.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { resolveSafeChildPath, type RootConfigService } from '@backstage/backend-plugin-api';
import { InputError, ServiceUnavailableError } from '@backstage/errors';
import { createTemplateAction } from '@backstage/plugin-scaffolder-node';

/** Where the Trellis backend is and how to talk to it (the `trellis:` config block). */
export interface TrellisOptions {
  baseUrl: string;
  token: string;
  timeoutSeconds: number;
}

/** Default for `trellis.timeoutSeconds`: a large blueprint renders in seconds, not minutes. */
export const DEFAULT_TIMEOUT_SECONDS = 120;

/** One file of a rendering, decoded and with its place in the workspace resolved. */
interface RenderedFile {
  path: string;
  target: string;
  content: Buffer;
  executable: boolean;
}

/** Reads the `trellis:` config block; fails at startup rather than at the first task. */
export function readTrellisOptions(config: RootConfigService): TrellisOptions {
  const baseUrl = config.getString('trellis.baseUrl').replace(/\/+$/, '');
  let parsed: URL;
  try {
    parsed = new URL(baseUrl);
  } catch {
    throw new Error(`trellis.baseUrl must be an http(s) URL, got ${JSON.stringify(baseUrl)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new Error(`trellis.baseUrl must be an http(s) URL, got ${JSON.stringify(baseUrl)}`);
  }
  const token = config.getString('trellis.token');
  const timeoutSeconds =
    config.getOptionalNumber('trellis.timeoutSeconds') ?? DEFAULT_TIMEOUT_SECONDS;
  if (!(timeoutSeconds > 0)) {
    throw new Error(`trellis.timeoutSeconds must be a positive number, got ${timeoutSeconds}`);
  }
  return { baseUrl, token, timeoutSeconds };
}

/** Creates the action that asks Trellis to render a blueprint and writes the files. */
export function createTrellisRenderAction(options: TrellisOptions) {
  return createTemplateAction({
    id: 'trellis:blueprint:render',
    description:
      'Renders a Trellis blueprint (Copier, in the Trellis backend) into the workspace.',
    supportsDryRun: true,
    schema: {
      input: {
        blueprint: z => z.string({ description: 'Blueprint name, e.g. ml-model' }).min(1),
        values: z =>
          z.record(z.unknown(), { description: "The blueprint's answers, question: answer" }),
        secrets: z =>
          z
            .record(z.unknown(), { description: 'Secret answers, merged over values' })
            .optional(),
        targetPath: z =>
          z
            .string({ description: 'Workspace folder to write into (default: the root)' })
            .optional(),
      },
      output: {
        version: z => z.string({ description: 'Blueprint version that was rendered' }),
        fileCount: z => z.number({ description: 'How many files were written' }),
      },
    },
    async handler(ctx) {
      const { blueprint } = ctx.input;
      const target = resolveSafeChildPath(ctx.workspacePath, ctx.input.targetPath ?? '.');
      const answers = { ...ctx.input.values, ...(ctx.input.secrets ?? {}) };
      const body = await requestRendering(options, blueprint, answers, ctx.signal);
      const { version, files } = checkRendering(body, blueprint, target);
      for (const file of files) {
        await fs.mkdir(path.dirname(file.target), { recursive: true });
        await fs.writeFile(file.target, file.content);
        // Set the mode explicitly: writeFile's mode only applies to new files, minus umask.
        await fs.chmod(file.target, file.executable ? 0o755 : 0o644);
      }
      ctx.logger.info(`Rendered ${blueprint} ${version}: ${files.length} files`);
      ctx.output('version', version);
      ctx.output('fileCount', files.length);
    },
  });
}

/** POSTs the answers and returns the parsed 2xx body; every failure becomes a clear error. */
async function requestRendering(
  options: TrellisOptions,
  blueprint: string,
  values: Record<string, unknown>,
  cancel: AbortSignal | undefined,
): Promise<unknown> {
  const url = `${options.baseUrl}/api/blueprints/${encodeURIComponent(blueprint)}/render`;
  const timeout = AbortSignal.timeout(options.timeoutSeconds * 1000);
  const signal = cancel ? AbortSignal.any([cancel, timeout]) : timeout;
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${options.token}`,
        'Content-Type': 'application/json',
        Accept: 'application/json',
      },
      body: JSON.stringify({ values }),
      signal,
    });
    text = await response.text();
  } catch (error) {
    if (cancel?.aborted) {
      throw new Error(`Rendering ${blueprint} was cancelled`);
    }
    const cause = timeout.aborted
      ? `no answer within ${options.timeoutSeconds} s`
      : describeCause(error);
    // A 503 in dry runs, so the template editor tells "try again" apart from a bug.
    throw new ServiceUnavailableError(`Trellis at ${options.baseUrl} is unreachable: ${cause}`);
  }
  const body = parseJson(text);
  if (response.status === 400) {
    throw new InputError(`Trellis rejected the answers for ${blueprint}: ${listErrors(body)}`);
  }
  if (!response.ok) {
    const detail = detailOf(body) ?? (text.trim().slice(0, 500) || response.statusText);
    const message = `Trellis could not render ${blueprint}: HTTP ${response.status}: ${detail}`;
    throw response.status === 503 || response.status === 504
      ? new ServiceUnavailableError(message)
      : new Error(message);
  }
  return body;
}

/** Checks the whole rendering before anything is written; returns the decoded files. */
function checkRendering(
  body: unknown,
  blueprint: string,
  target: string,
): { version: string; files: RenderedFile[] } {
  const invalid = (reason: string) =>
    new Error(`Trellis returned an invalid rendering of ${blueprint}: ${reason}`);
  if (!isObject(body) || !Array.isArray(body.files)) {
    throw invalid('no files array');
  }
  const version = typeof body.version === 'string' ? body.version : '';
  if (!version) {
    throw invalid('no version');
  }
  const seen = new Set<string>();
  const files = body.files.map((entry: unknown, index: number): RenderedFile => {
    if (!isObject(entry) || typeof entry.path !== 'string') {
      throw invalid(`file #${index} has no path`);
    }
    const relative = entry.path;
    const segments = relative.split('/');
    if (
      relative.startsWith('/') ||
      relative.includes('\\') ||
      relative.includes('\0') ||
      segments.some(s => s === '' || s === '.' || s === '..')
    ) {
      throw invalid(`unsafe path ${JSON.stringify(relative)}`);
    }
    if (seen.has(relative)) {
      throw invalid(`${relative} appears twice`);
    }
    seen.add(relative);
    let resolved: string;
    try {
      // Also refuses a path that leaves the folder through a symlink already there.
      resolved = resolveSafeChildPath(target, relative);
    } catch {
      throw invalid(`unsafe path ${JSON.stringify(relative)}`);
    }
    const encoded = entry.base64Content;
    if (typeof encoded !== 'string' || !isBase64(encoded)) {
      throw invalid(`${relative} has no valid base64Content`);
    }
    if (entry.executable !== undefined && typeof entry.executable !== 'boolean') {
      throw invalid(`${relative} has a non-boolean executable flag`);
    }
    return {
      path: relative,
      target: resolved,
      content: Buffer.from(encoded, 'base64'),
      executable: entry.executable === true,
    };
  });
  for (const file of files) {
    const segments = file.path.split('/');
    for (let i = 1; i < segments.length; i++) {
      if (seen.has(segments.slice(0, i).join('/'))) {
        throw invalid(`${file.path} is inside ${segments.slice(0, i).join('/')}, also a file`);
      }
    }
  }
  return { version, files };
}

/** Strict base64: Buffer.from silently skips characters that do not belong. */
function isBase64(text: string): boolean {
  return text.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(text);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function detailOf(body: unknown): string | undefined {
  return isObject(body) && typeof body.detail === 'string' ? body.detail : undefined;
}

/** `field: message; field: message` from a 400 body, or its one-line detail. */
function listErrors(body: unknown): string {
  const errors = isObject(body) && Array.isArray(body.errors) ? body.errors : [];
  const listed = errors
    .filter(isObject)
    .map(e => `${String(e.field ?? '?')}: ${String(e.message ?? '')}`);
  if (listed.length > 0) {
    return listed.join('; ');
  }
  return detailOf(body) ?? 'the answers are invalid';
}

/** fetch hides the useful part (ECONNREFUSED, ENOTFOUND, ...) in the error's cause. */
function describeCause(error: unknown): string {
  const cause = error instanceof Error ? error.cause : undefined;
  if (cause instanceof Error && cause.message) {
    return cause.message;
  }
  if (isObject(cause) && typeof cause.code === 'string') {
    return cause.code;
  }
  return error instanceof Error ? error.message : String(error);
}
