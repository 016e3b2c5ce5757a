/**
 * A subscriber's position: one opaque string covering its user stream and the broadcast stream,
 * `<epoch>.<userSeq>.<broadcastSeq>`. The epoch names the history the numbers belong to.
 */
export interface Cursor {
  epoch: string;
  user: number;
  broadcast: number;
}

const CURSOR = /^([A-Za-z0-9_-]{1,64})\.(\d{1,15})\.(\d{1,15})$/;

export function formatCursor(epoch: string, user: number, broadcast: number): string {
  return `${epoch}.${user}.${broadcast}`;
}

/** Parses a cursor; returns undefined when the string is not one (the server answers 400). */
export function parseCursor(text: string): Cursor | undefined {
  const m = CURSOR.exec(text);
  if (!m) return undefined;
  return { epoch: m[1]!, user: Number(m[2]), broadcast: Number(m[3]) };
}
