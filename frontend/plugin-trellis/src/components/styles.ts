import type React from 'react';

/** A table cell of the cards' plain tables. */
export const cell: React.CSSProperties = {
  padding: '4px 12px 4px 0',
  verticalAlign: 'top',
  textAlign: 'left',
};

/** Secondary text: units, dates, notes. */
export const muted: React.CSSProperties = { opacity: 0.7, fontSize: '0.85em' };
