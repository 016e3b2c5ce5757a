/**
 * Streams and the user ids that name them: one stream per user (`user:<id>`) and one `broadcast`. A user id follows
 * one rule wherever it enters (`?user=`, a token's `sub`, every publish target): an id a subscriber could not use
 * would be a stream nobody can ever read.
 */
export const BROADCAST = 'broadcast';
export const USER_STREAM_PREFIX = 'user:';

export const USER_ID = /^[A-Za-z0-9_.@:+=-]{1,200}$/;
export const USER_ID_RULE = '1-200 characters of A-Z a-z 0-9 _ . @ : + = -';

export function userStream(user: string): string {
  return USER_STREAM_PREFIX + user;
}

/** The streams a subscriber receives: its own user stream (when it has a user) and the broadcast stream. */
export function subscriberStreams(user: string | undefined): string[] {
  return user === undefined ? [BROADCAST] : [userStream(user), BROADCAST];
}
