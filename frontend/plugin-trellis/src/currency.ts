/** Pure helpers for the Blueprint currency card: how its facts read. */
import type { BlueprintCurrency } from './types';

/** The annotation a Component generated from a Trellis blueprint carries (its name). */
export const BLUEPRINT_ANNOTATION = 'trellis.dev/blueprint';

/** "2 releases behind", "up to date", or why it cannot be told. */
export function behindText(currency: BlueprintCurrency): string {
  const { versionsBehind: behind } = currency;
  if (behind === null) {
    return currency.latestVersion === null ? 'unknown: the releases could not be read' : 'unknown';
  }
  if (behind === 0) {
    return 'up to date';
  }
  return `${behind} ${behind === 1 ? 'release' : 'releases'} behind`;
}

/** What the request is called on its host. */
export function requestTitle(host: string): string {
  return host === 'gitlab' ? 'merge request' : 'pull request';
}

/**
 * The link only when it is an https URL: Trellis builds it from checked, encoded parts, and
 * the card does not follow anything else (a `javascript:` URL never becomes an href).
 */
export function safeHref(url: string | undefined | null): string | undefined {
  if (!url) return undefined;
  try {
    return new URL(url).protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}
