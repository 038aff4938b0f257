import net from 'node:net';

/**
 * A minimal TCP load balancer for failure tests: each new connection goes to the next backend
 * (round robin) that accepts it; a dead backend is skipped. Enough for WebSocket clients that
 * reconnect through "the load balancer" after their node dies.
 */
export class TcpBalancer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private next = 0;

  constructor(private readonly backends: number[]) {
    this.server = net.createServer((client) => this.accept(client, 0));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Points backend `index` at `port` from the next connection on (a restarted node on a new port). */
  setBackend(index: number, port: number): void {
    this.backends[index] = port;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, tried: number): void {
    if (tried >= this.backends.length) {
      client.destroy();
      return;
    }
    const port = this.backends[this.next++ % this.backends.length];
    const upstream = net.connect(port, '127.0.0.1');
    client.pause();
    upstream.once('error', () => {
      upstream.destroy();
      if (!client.destroyed) this.accept(client, tried + 1);
    });
    upstream.once('connect', () => {
      // Forward small frames at once, as production balancers do (TCP_NODELAY).
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      this.track(client);
      this.track(upstream);
      client.pipe(upstream).pipe(client);
      client.resume();
      const closeBoth = () => {
        client.destroy();
        upstream.destroy();
      };
      client.once('close', closeBoth);
      upstream.once('close', closeBoth);
      client.on('error', closeBoth);
      upstream.on('error', closeBoth);
    });
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }
}
