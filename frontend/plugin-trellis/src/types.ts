/** The parts of Trellis's answers the cards show. */

// GET /api/observability/{namespace}/{kind}/{name}

export type SignalStatus = 'ok' | 'missing' | 'stale' | 'unavailable';

export interface Signal {
  id: string;
  title: string;
  unit: string;
  status: SignalStatus;
  reason: string | null;
  current: { at: number; value: number | null } | null;
  /** `[unix seconds, value]`, oldest first; `null` where Prometheus computed no number. */
  series: Array<[number, number | null]>;
}

export interface Server {
  cluster: string;
  region: string;
  namespace: string;
  name: string;
  runtime: string;
  ready: boolean | null;
  readyReplicas: number;
  desiredReplicas: number;
  signals: Signal[];
}

export interface MetricPoint {
  step: number;
  timestamp: string;
  value: number | null;
}

export interface Training {
  alias: string;
  version: number;
  runId: string | null;
  status: 'ok' | 'missing' | 'unavailable';
  reason: string | null;
  metrics: Record<string, MetricPoint[]>;
}

export interface SourceState {
  status: 'ok' | 'unavailable';
  reason: string | null;
  requests: number;
}

export interface ObservabilityPage {
  entity: { ref: string; kind: string; namespace: string; name: string; model: string | null };
  window: {
    start: string;
    end: string;
    range: string;
    step: string;
    stepSeconds: number;
    rateWindowSeconds: number;
    points: number;
  };
  servers: Server[];
  model: { servers: number; signals: Signal[] };
  training: Training[];
  sources: Record<string, SourceState>;
}

// GET /api/blueprints/currency/{namespace}/{kind}/{name}

export interface BlueprintRelease {
  version: string;
  date: string | null;
  notes: string;
}

export interface BlueprintCurrency {
  entityRef: string | null;
  location: string;
  blueprint: string;
  currentVersion: string;
  latestVersion: string | null;
  /** Releases newer than the version in use; null when that cannot be told. */
  versionsBehind: number | null;
  upToDate: boolean;
  note: string | null;
  status: 'ok' | 'unavailable';
  reason: string | null;
  /** The releases not taken yet, newest first. */
  releases: BlueprintRelease[];
  updateRequest: { host: 'github' | 'gitlab'; branch: string; url: string } | null;
  updateRequestReason: string | null;
}
