/**
 * One simulated backend: a plain HTTP server on 127.0.0.1 (OS-chosen port, kept across restarts)
 * that answers every request with a JSON body naming its region and itself.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'

/** What a backend answers (and what a client of the pool receives through the proxy). */
export interface BackendReply {
  region: string
  backend: string
  method: string
  path: string
  /** The `X-Forwarded-For` the backend saw (set by the pool's proxy), or null. */
  forwardedFor: string | null
  /** Bytes of request body received (the proxy streams it through). */
  received: number
}

export class SimBackend {
  readonly name: string
  /** 0 until the first start; then the same port on every restart, so the pool's table stays valid. */
  port = 0
  private server: http.Server | null = null
  private readonly hitsByPath = new Map<string, number>()

  constructor(
    readonly region: string,
    readonly index: number,
    readonly host = '127.0.0.1',
  ) {
    this.name = `${region}-b${index + 1}`
  }

  get running(): boolean {
    return this.server !== null
  }

  /** Requests received for `path` (every path when omitted), the pool's own /healthz probes excluded. */
  hits(path?: string): number {
    if (path !== undefined) return this.hitsByPath.get(path) ?? 0
    let n = 0
    for (const v of this.hitsByPath.values()) n += v
    return n
  }

  async start(): Promise<void> {
    if (this.server) return
    const server = http.createServer((req, res) => this.handle(req, res))
    server.keepAliveTimeout = 30_000
    this.port = await listen(server, this.port, this.host)
    this.server = server
  }

  /** Closes the listening socket and every open connection: the backend is gone. */
  async stop(): Promise<void> {
    const server = this.server
    if (!server) return
    this.server = null
    await closeServer(server)
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    const probe = path === '/healthz' && req.headers['x-sim-probe'] === '1'
    if (!probe) this.hitsByPath.set(path, (this.hitsByPath.get(path) ?? 0) + 1)
    let received = 0
    req.on('data', (chunk: Buffer) => {
      received += chunk.length
    })
    req.on('end', () => {
      const xff = req.headers['x-forwarded-for']
      const reply: BackendReply = {
        region: this.region,
        backend: this.name,
        method: req.method ?? 'GET',
        path,
        forwardedFor: typeof xff === 'string' ? xff : null,
        received,
      }
      const body = JSON.stringify(reply)
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'x-sim-region': this.region,
        'x-sim-backend': this.name,
      })
      res.end(req.method === 'HEAD' ? undefined : body)
    })
  }
}

/** Listens on host:port (0 = OS-chosen) and resolves with the port, or rejects on a listen error. */
export function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve((server.address() as AddressInfo).port)
    })
  })
}

/** Closes the listening socket and cuts every open connection; resolves once the server is closed. */
export async function closeServer(server: http.Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  server.closeAllConnections()
  await closed
}
