import type { Server } from 'node:http';
/** Serves `root` on `port` (0: any free one); resolves with the server and its URL. */
export function serveStatic(root: string, port?: number): Promise<{ server: Server; url: string }>;
/** The shipped tiny model exported at 3 bits into `out` (skipped when it is there). */
export function ensureTinyExport(out: string): void;
