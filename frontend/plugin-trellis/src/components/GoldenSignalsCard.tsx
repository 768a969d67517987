import React from 'react';
import {
  GOLDEN_SIGNALS,
  findSignal,
  formatValue,
  signalProblem,
  unavailableSources,
} from '../format';
import type { ObservabilityPage, Signal } from '../types';
import { ObservabilityCard } from './ObservabilityCard';
import { Sparkline } from './Sparkline';
import { muted } from './styles';

const COLUMNS: Record<(typeof GOLDEN_SIGNALS)[number], string> = {
  request_rate: 'Request rate',
  error_ratio: 'Error ratio',
  latency_p95: 'p95 latency',
};

const cell: React.CSSProperties = { padding: '6px 12px 6px 0', verticalAlign: 'top' };

function SignalCell(props: {
  signals: Signal[];
  id: string;
  where: string;
  shownReasons: ReadonlySet<string>;
}) {
  const signal = findSignal(props.signals, props.id);
  const problem = signalProblem(signal, props.shownReasons);
  return (
    <td style={cell} data-signal={props.id}>
      {signal && !problem ? (
        <>
          <span data-testid="trellis-value">{formatValue(signal.current?.value, signal.unit)}</span>
          <Sparkline series={signal.series} label={`${signal.title}, ${props.where}`} />
        </>
      ) : (
        <span style={muted} data-testid="trellis-reason">
          {problem}
        </span>
      )}
    </td>
  );
}

/** The table and the reasons for anything missing; never empty. */
export function GoldenSignalsView(props: { page: ObservabilityPage }) {
  const { page } = props;
  const unavailable = unavailableSources(page);
  const shownReasons = new Set(unavailable.map(([, reason]) => reason));
  const rows = page.servers.map(server => ({
    key: `${server.cluster}/${server.namespace}/${server.name}`,
    label: server.region,
    detail: `${server.cluster} · ${server.runtime} · ${server.readyReplicas}/${server.desiredReplicas} ready`,
    signals: server.signals,
  }));
  if (page.servers.length > 1) {
    rows.push({
      key: 'model',
      label: 'All regions',
      detail: `pooled over ${page.model.servers} servers`,
      signals: page.model.signals,
    });
  }
  return (
    <div
      data-testid="trellis-golden-signals"
      data-start={page.window.start}
      data-end={page.window.end}
      data-step-seconds={page.window.stepSeconds}
      data-rate-window-seconds={page.window.rateWindowSeconds}
    >
      {unavailable.map(([source, reason]) => (
        <p key={source} role="alert" data-testid="trellis-unavailable">
          <strong>{source}</strong> is unavailable: {reason}
        </p>
      ))}
      {rows.length === 0 ? (
        <p data-testid="trellis-no-servers">
          No server of this model is known to Trellis, so there are no signals to show.
        </p>
      ) : (
        <table style={{ borderCollapse: 'collapse', width: '100%' }}>
          <thead>
            <tr>
              <th style={{ ...cell, textAlign: 'left' }}>Region</th>
              {GOLDEN_SIGNALS.map(id => (
                <th key={id} style={{ ...cell, textAlign: 'left' }}>
                  {COLUMNS[id]}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map(row => (
              <tr key={row.key} data-testid="trellis-row" data-region={row.label}>
                <td style={cell}>
                  <div>{row.label}</div>
                  <div style={muted}>{row.detail}</div>
                </td>
                {GOLDEN_SIGNALS.map(id => (
                  <SignalCell
                    key={id}
                    signals={row.signals}
                    id={id}
                    where={row.label}
                    shownReasons={shownReasons}
                  />
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p style={muted}>
        Last {page.window.range}, one point every {page.window.step}.
      </p>
    </div>
  );
}

/** Entity card: golden signals of a model per region, read from Trellis through the proxy. */
export function GoldenSignalsCard() {
  return (
    <ObservabilityCard title="Golden signals" view={page => <GoldenSignalsView page={page} />} />
  );
}
