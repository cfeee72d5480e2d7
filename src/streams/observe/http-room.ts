/**
 * Room for a real client on a local HTTP endpoint (metrics, dashboard). Connections that are not
 * being answered (silent, in the middle of their request, kept alive after an answer) are at
 * most `maxWaiting`, connections of all kinds at most `maxOpen`. One more takes the place of the
 * oldest waiting one, else (every one being answered, e.g. by clients that do not read) of the
 * oldest of all: a local client holding connections cannot lock a scraper or a browser out.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** Installs the policy on `server`; the returned set holds its open connections, oldest first. */
export function keepRoom(server: Server, maxWaiting: number, maxOpen: number): ReadonlySet<Socket> {
  const waiting = new Set<Socket>();
  const open = new Set<Socket>();
  server.on('request', (req, res) => {
    const socket = req.socket;
    waiting.delete(socket);
    res.once('finish', () => {
      if (!socket.destroyed) waiting.add(socket);
    });
  });
  server.on('connection', (socket: Socket) => {
    const full = waiting.size >= maxWaiting ? waiting : open.size >= maxOpen ? open : undefined;
    const oldest = full?.values().next().value;
    if (oldest) {
      waiting.delete(oldest);
      open.delete(oldest);
      oldest.destroy();
    }
    waiting.add(socket);
    open.add(socket);
    socket.once('close', () => {
      waiting.delete(socket);
      open.delete(socket);
    });
  });
  return open;
}
