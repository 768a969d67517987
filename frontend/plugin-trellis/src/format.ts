/** Pure helpers: which signals a card shows and how their numbers read. */
import type { MetricPoint, ObservabilityPage, Signal, Training } from './types';

/** The golden signals of the card, in column order. */
export const GOLDEN_SIGNALS = ['request_rate', 'error_ratio', 'latency_p95'] as const;

export function findSignal(signals: Signal[], id: string): Signal | undefined {
  return signals.find(signal => signal.id === id);
}

/** A value in the signal's unit, short enough for a table cell. */
export function formatValue(value: number | null | undefined, unit: string): string {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return '–';
  }
  switch (unit) {
    case 'ratio':
      return `${(value * 100).toFixed(2)} %`;
    case 's':
      return value < 1 ? `${(value * 1000).toFixed(0)} ms` : `${value.toFixed(2)} s`;
    case 'req/s':
      return `${value.toFixed(2)} req/s`;
    default:
      return `${value.toFixed(2)} ${unit}`;
  }
}

/**
 * Why a signal has no current number, or undefined when it has one. A reason already shown
 * above the table (a source that is unavailable) is not repeated in every cell.
 */
export function signalProblem(
  signal: Signal | undefined,
  shownReasons: ReadonlySet<string> = new Set(),
): string | undefined {
  if (!signal) {
    return 'not reported by this runtime';
  }
  if (signal.status === 'ok') {
    return undefined;
  }
  if (signal.reason && shownReasons.has(signal.reason)) {
    return signal.status;
  }
  if (signal.reason) {
    return `${signal.status}: ${signal.reason}`;
  }
  return signal.status === 'missing' ? 'no samples in this window' : signal.status;
}

/** Sources Trellis could not read for this answer, each with its reason. */
export function unavailableSources(page: ObservabilityPage): Array<[string, string]> {
  return Object.entries(page.sources)
    .filter(([, state]) => state.status === 'unavailable')
    .map(([name, state]) => [name, state.reason ?? 'no reason given']);
}

/** An SVG polyline's points for a series, scaled into width x height; gaps are skipped. */
export function sparklinePoints(
  series: Array<[number, number | null]>,
  width: number,
  height: number,
): string {
  const present = series.filter((p): p is [number, number] => p[1] !== null && Number.isFinite(p[1]));
  if (present.length < 2) {
    return '';
  }
  const t0 = present[0][0];
  const t1 = present[present.length - 1][0];
  const values = present.map(p => p[1]);
  const low = Math.min(...values);
  const high = Math.max(...values);
  const spanT = t1 - t0 || 1;
  const spanV = high - low || 1;
  return present
    .map(([t, v]) => {
      const x = ((t - t0) / spanT) * width;
      const y = height - ((v - low) / spanV) * height;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(' ');
}

/** The last logged value of a metric, or a dash when it has none. */
export function formatMetric(points: MetricPoint[]): string {
  const last = [...points].reverse().find(p => p.value !== null && Number.isFinite(p.value));
  return last && last.value !== null ? last.value.toFixed(4) : '–';
}

/** Why a run's history is not shown, or undefined when it is. */
export function trainingProblem(run: Training): string | undefined {
  if (run.status === 'ok') {
    return Object.keys(run.metrics).length === 0 ? 'the run logged no metrics' : undefined;
  }
  return `${run.status}: ${run.reason ?? (run.status === 'missing' ? 'no run behind this version' : 'no reason given')}`;
}
