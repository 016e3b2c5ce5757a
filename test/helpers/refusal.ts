/** A subscribe request the server answered with an HTTP error instead of opening a stream. */
export class Refused extends Error {
  constructor(
    readonly status: number,
    readonly headers: Record<string, string | string[] | undefined>,
    readonly text: string,
  ) {
    super(`refused with HTTP ${status}: ${text.slice(0, 300)}`);
  }

  get body(): any {
    try {
      return JSON.parse(this.text);
    } catch {
      return undefined;
    }
  }
}

/** Awaits a connect that must be refused; returns the refusal (fails the test if the stream opened). */
export async function refused(connect: Promise<{ close(): unknown }>): Promise<Refused> {
  let opened: { close(): unknown };
  try {
    opened = await connect;
  } catch (err) {
    if (err instanceof Refused) return err;
    throw err;
  }
  opened.close();
  throw new Error('expected the server to refuse the connection, but it opened');
}
