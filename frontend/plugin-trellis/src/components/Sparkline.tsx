import React from 'react';
import { sparklinePoints } from '../format';

/** A small line of a series over the card's window; nothing drawn without two points. */
export function Sparkline(props: {
  series: Array<[number, number | null]>;
  label: string;
  width?: number;
  height?: number;
}) {
  const width = props.width ?? 96;
  const height = props.height ?? 24;
  const points = sparklinePoints(props.series, width, height);
  if (!points) {
    return null;
  }
  return (
    <svg
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={props.label}
      data-testid="trellis-sparkline"
      style={{ display: 'block', overflow: 'visible' }}
    >
      <polyline points={points} fill="none" stroke="currentColor" strokeWidth={1.5} />
    </svg>
  );
}
