/** The chunked decoder the checks use is the SSE transport's (one decoder for both). */
export { ChunkedDecoder } from '../transports/http1-chunked.js';
