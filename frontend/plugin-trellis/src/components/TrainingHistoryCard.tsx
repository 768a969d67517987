import React from 'react';
import { formatMetric, trainingProblem } from '../format';
import type { ObservabilityPage } from '../types';
import { ObservabilityCard } from './ObservabilityCard';
import { Sparkline } from './Sparkline';
import { muted } from './styles';

const cell: React.CSSProperties = { padding: '4px 12px 4px 0', verticalAlign: 'top' };

/** Each aliased version's run: its metrics' last values and curves, or why there are none. */
export function TrainingHistoryView(props: { page: ObservabilityPage }) {
  const { training } = props.page;
  if (training.length === 0) {
    return (
      <p data-testid="trellis-no-training">
        This model has no champion or candidate version, so there is no training to show.
      </p>
    );
  }
  return (
    <div data-testid="trellis-training">
      {training.map(run => {
        const problem = trainingProblem(run);
        const metrics = Object.entries(run.metrics).sort(([a], [b]) => a.localeCompare(b));
        return (
          <section key={run.alias} data-testid="trellis-run" data-alias={run.alias}>
            <h3 style={{ margin: '8px 0 4px' }}>
              {run.alias} · version <span data-testid="trellis-version">{run.version}</span>
            </h3>
            {problem ? (
              <p style={muted} data-testid="trellis-reason">
                {problem}
              </p>
            ) : (
              <table style={{ borderCollapse: 'collapse' }}>
                <tbody>
                  {metrics.map(([name, points]) => (
                    <tr key={name} data-testid="trellis-metric" data-metric={name}>
                      <td style={cell}>{name}</td>
                      <td style={cell} data-testid="trellis-value">
                        {formatMetric(points)}
                      </td>
                      <td style={cell}>
                        <Sparkline
                          series={points.map(p => [p.step, p.value] as [number, number | null])}
                          label={`${name} of ${run.alias}`}
                        />
                      </td>
                      <td style={{ ...cell, ...muted }}>{points.length} steps</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
        );
      })}
    </div>
  );
}

/** Entity card: training history of the model's champion and candidate, from MLflow via Trellis. */
export function TrainingHistoryCard() {
  return (
    <ObservabilityCard title="Training history" view={page => <TrainingHistoryView page={page} />} />
  );
}
