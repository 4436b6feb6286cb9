/**
 * DNS sockets, built on dns2's UDPServer (a dgram socket) and TCPServer (a net.Server), with their
 * message handling replaced by Meridian's transport-neutral DnsHandler. UDP and TCP of one listen
 * address share its port. TCP follows RFC 7766: pipelined queries, an idle timeout, a connection cap,
 * and reading paused while a slow reader's replies are queued.
 */
import type { RemoteInfo } from 'node:dgram'
import { isIP, type Socket } from 'node:net'
import { networkInterfaces } from 'node:os'
import dns2 from 'dns2'
import { MeridianError } from '../errors.js'
import type { Logger } from '../log.js'
import { formatAddress } from '../model/address.js'
import type { DnsHandler } from './handler.js'

export interface ListenAddress {
  host: string
  port: number
}

/** Parses `ADDR:PORT`, with IPv6 in brackets: `127.0.0.1:5300`, `[::]:53`. */
export function parseListen(spec: string): ListenAddress {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(spec) ?? /^([^:[\]]+):(\d+)$/.exec(spec)
  const port = m ? Number(m[2]) : NaN
  if (!m || !isIP(m[1]!) || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new MeridianError('E_CLI_USAGE', `listen address "${spec}" must be IPv4:PORT or [IPv6]:PORT, e.g. 127.0.0.1:5300 or [::1]:5300`)
  }
  return { host: m[1]!, port }
}

export interface TcpOptions {
  /** Close a connection with no query for this long (RFC 7766 §6.2.3). */
  idleTimeoutMs: number
  /** Refuse connections beyond this many at once (per listen address). */
  maxConnections: number
}

/** dgram's lookup for addresses that are already IP literals (rinfo.address): no DNS, no deferral. */
function literalLookup(address: string, family: number, callback: (err: null, address: string, family: number) => void): void {
  callback(null, address, family)
}

class UdpListener extends dns2.UDPServer {
  constructor(
    family: 4 | 6,
    private readonly handler: DnsHandler,
  ) {
    // dns2 passes `type` through to dgram.Socket, which also takes an options object. Replies only
    // ever go to the address a query came from (an IP literal), so the lookup answers at once:
    // dgram's default (dns.lookup) defers every send by a process.nextTick for nothing.
    super({ type: { type: family === 6 ? 'udp6' : 'udp4', ipv6Only: family === 6, lookup: literalLookup } as never })
    // dns2's constructor listens for 'message' with a bound handle(); emit() below calls handle()
    // itself, so that listener would never run: removed rather than left to mislead.
    this.removeAllListeners('message')
  }

  override handle(data: Buffer, rinfo: RemoteInfo): void {
    // No reply can go to port 0 (a spoofed source: dgram's send throws on it, synchronously, inside
    // this socket event, and one such datagram ended the process). Dropped unread, as BIND does.
    if (rinfo.port === 0) return
    const reply = this.handler.handle(data, 'udp', rinfo.address)
    if (reply) this.send(reply, rinfo.port, rinfo.address)
  }

  /**
   * Closes the socket once it has answered what it held: the queries sent before the shutdown
   * began wait in the kernel's receive queue, and closing at once dropped them unanswered (one
   * process: 96-239 of 250 answered; two workers, which read one shared socket: 192-250). libuv
   * reads a socket's queue 32 datagrams per poll for I/O, so reading goes on until a look finds no
   * datagram read for UDP_QUIET_MS and a poll since (an immediate after the timer: a loop blocked
   * past the timer is no quiet socket): then the queue is empty, and one sent just before (from
   * the network) had those milliseconds to come. A socket that never goes quiet (steady traffic)
   * is closed at `maxMs`. Resolves once closed. The datagrams are counted only from here on (a
   * counting handle() of this socket's own), not on every query's path.
   */
  drain(maxMs: number): Promise<void> {
    let read = 0
    const handle = this.handle
    this.handle = (data: Buffer, rinfo: RemoteInfo): void => {
      read++
      handle.call(this, data, rinfo)
    }
    return new Promise((resolve) => {
      let seen = read
      let immediate: NodeJS.Immediate | undefined
      const done = (): void => {
        clearTimeout(quiet)
        clearTimeout(bound)
        clearImmediate(immediate)
        try {
          this.close(() => resolve())
        } catch {
          resolve() // already closed (a socket error closed it)
        }
      }
      const check = (): void => {
        if (read === seen) return done()
        seen = read
        quiet.refresh()
      }
      const quiet = setTimeout(() => (immediate = setImmediate(check)), UDP_QUIET_MS)
      const bound = setTimeout(done, maxMs)
    })
  }

  /**
   * dgram hands every datagram to `emit('message', msg, rinfo)`; here it goes straight to handle()
   * instead of through EventEmitter's listener lookup, a megamorphic load of `apply` and a call
   * through a bound function (~75 ns of a ~10 µs query in the server's profile, session 10). Every
   * other event is emitted as usual; a 'message' listener added to this socket would never run.
   */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'message') {
      this.handle(args[0] as Buffer, args[1] as RemoteInfo)
      return true
    }
    return super.emit(event, ...args)
  }
}

class TcpListener extends dns2.TCPServer {
  /** Each open connection, with its shutdown: answer what it has sent, then end it (see shutdown()). */
  readonly sockets = new Map<Socket, () => void>()
  private shuttingDown = false

  constructor(
    private readonly handler: DnsHandler,
    private readonly opts: TcpOptions,
  ) {
    super()
    this.maxConnections = opts.maxConnections
  }

  /** Replaces dns2's per-connection handler (bound in its constructor). */
  handle(sock: Socket): void {
    // Node leaves remoteAddress undefined on a connection already closed by the time it is handed over.
    const peer = sock.remoteAddress
    if (peer === undefined) {
      sock.destroy()
      return
    }
    sock.setNoDelay(true)
    // Idle means no complete query for idleTimeoutMs (RFC 7766 §6.2.3): a byte now and then does not
    // keep a connection (socket.setTimeout would restart on it: a slowloris held every slot).
    const idle = setTimeout(() => sock.destroy(), this.opts.idleTimeoutMs)
    // The octets read and not yet answered: the chunks of a message not yet whole, or what was left
    // when the client stopped reading its answers. Joined once whole (a message trickling in one
    // octet per segment is not copied again at every segment).
    let parts: Buffer[] = []
    let held = 0
    // Waiting for 'drain': the client does not read its answers, so none is made until it does.
    let blocked = false
    // The client has half-closed: our side ends once the queries it sent are answered.
    let ended = false
    // Shutting down (finish()): our side ends once what the client had sent is answered.
    let finishing = false
    /** Answers every whole message of `pending`, until a write has to wait; keeps the rest. */
    const serve = (pending: Buffer): void => {
      let off = 0
      while (!blocked && pending.length - off >= 2) {
        const len = pending.readUInt16BE(off)
        if (pending.length - off - 2 < len) break
        const reply = this.handler.handle(pending.subarray(off + 2, off + 2 + len), 'tcp', peer)
        off += 2 + len
        idle.refresh()
        if (reply && sock.writable) {
          const frame = Buffer.allocUnsafe(2 + reply.length)
          frame.writeUInt16BE(reply.length, 0)
          reply.copy(frame, 2)
          // Stop reading, and answering, while the client does not read its answers (RFC 7766
          // §6.2.1): the queries already read wait with the rest, so what one connection holds is
          // one write past the high-water mark, not the answers to a whole read of queries.
          if (!sock.write(frame)) {
            blocked = true
            sock.pause()
            sock.once('drain', resume)
          }
        }
      }
      // What is left is copied out, so that the chunk it came in (up to 64 KiB) is not kept alive by it.
      if (off < pending.length) {
        parts = [Buffer.from(pending.subarray(off))]
        held = pending.length - off
      }
    }
    /** The octets held, joined, and held no more. */
    const take = (): Buffer => {
      const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts, held)
      parts = []
      held = 0
      return all
    }
    const resume = (): void => {
      blocked = false
      if (held > 0) serve(take())
      if (blocked) return
      if (ended) sock.end()
      else {
        sock.resume()
        if (finishing) relook()
      }
    }
    /**
     * Shutdown: ends the connection at the second look, a loop turn apart, so that a poll for I/O
     * since the shutdown began read what the kernel held for it; every query read is answered as
     * it is read. What the client had sent is answered, and one that keeps sending cannot hold the
     * connection open. Not while the client does not read its answers (reading resumes on 'drain',
     * and the looks start again) or a query is half in (its rest starts them again): the
     * shutdown's grace bounds those.
     */
    let looks = 0
    let looking = false
    const look = (): void => {
      looking = false
      if (!sock.writable || blocked || held > 0) return
      if (++looks >= 2) sock.end()
      else lookAgain()
    }
    const lookAgain = (): void => {
      if (looking) return
      looking = true
      setImmediate(look)
    }
    /** Reading went on (resumed, or a query read): the two looks start again. */
    const relook = (): void => {
      looks = 0
      lookAgain()
    }
    const finish = (): void => {
      if (finishing) return
      finishing = true
      lookAgain()
    }
    this.sockets.set(sock, finish)
    if (this.shuttingDown) finish()
    sock.on('data', (chunk: Buffer) => {
      if (!sock.writable) return // our side has ended: nothing more can be answered
      if (held > 0 || blocked) {
        parts.push(chunk)
        held += chunk.length
        if (blocked || held < 2 || held < 2 + Buffer.concat(parts, 2).readUInt16BE(0)) return
        serve(take())
      } else {
        serve(chunk)
      }
      if (finishing && !blocked && held === 0 && !looking) relook()
    })
    sock.on('end', () => {
      ended = true
      if (!blocked) sock.end()
    })
    sock.on('error', () => sock.destroy())
    sock.on('close', () => {
      clearTimeout(idle)
      this.sockets.delete(sock)
    })
  }

  /**
   * Stops accepting connections; each open one answers the queries its client had sent and is
   * then ended (RFC 7766 §6.2.3: a server may close a connection, but what it received is
   * answered); those still open after `graceMs` (a client that does not read its answers, or
   * keeps its side open after our FIN) are destroyed. Resolves once every connection is closed.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.shuttingDown = true
    const closed = new Promise<void>((resolve) => this.close(() => resolve()))
    for (const finish of this.sockets.values()) finish()
    const grace = setTimeout(() => {
      for (const s of this.sockets.keys()) s.destroy()
    }, graceMs)
    await closed
    clearTimeout(grace)
  }
}

export interface BoundAddress {
  transport: 'udp' | 'tcp'
  address: string
  port: number
}

/** Whether `host` is its family's wildcard address (0.0.0.0, ::). */
function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || (isIP(host) === 6 && /^[0:]+$/.test(host))
}

/** This host's addresses of `family` (link-local IPv6 ones with their interface), for UDP on a wildcard listen address. */
function localAddresses(family: 4 | 6, interfaces: ReturnType<typeof networkInterfaces>): string[] {
  const out = new Set<string>()
  for (const [name, addrs] of Object.entries(interfaces)) {
    for (const a of addrs ?? []) {
      if (a.family !== (family === 4 ? 'IPv4' : 'IPv6')) continue
      out.add(a.family === 'IPv6' && a.scopeid ? `${a.address}%${name}` : a.address)
    }
  }
  return [...out]
}

/** How often a wildcard listener looks for addresses added to or removed from the host. */
const WILDCARD_RESCAN_MS = 30_000

/** Where a wildcard listener finds the host's addresses (os.networkInterfaces; tests give their own). */
export type Interfaces = () => ReturnType<typeof networkInterfaces>

/**
 * UDP and TCP on one address and port. On a wildcard address (0.0.0.0, ::) UDP takes one socket per
 * address of the host: a UDP reply must come from the address the query went to (RFC 2181 §4.1),
 * and a socket bound to the wildcard cannot tell which that was (Node's dgram has no IP_PKTINFO):
 * the kernel picks each reply's source by its route back to the client, so a query to a second
 * address of the host (an anycast address on lo, a secondary IP) was answered from another, and
 * resolvers drop such replies. BIND binds each address for `listen-on { any; }` too. The addresses
 * are looked at again every `rescanMs` (BIND's interface-interval): an address added later (an
 * anycast address brought up once the service is healthy) gets a socket, one removed loses its own.
 * TCP, whose replies go on the connection, keeps the wildcard.
 */
export class DnsListener {
  /** UDP sockets by the address they are bound to (one, or one per host address on a wildcard). */
  private udps = new Map<string, UdpListener>()
  private tcp: TcpListener | undefined
  private family: 4 | 6 = 4
  private port = 0
  private rescanTimer: NodeJS.Timeout | undefined
  private rescanning: Promise<unknown> | undefined
  /** Addresses found and not bound (logged once each, retried at every rescan). */
  private readonly unbindable = new Set<string>()
  private closed = false

  /** The open TCP connections (for diagnostics and tests). */
  get tcpConnections(): ReadonlySet<Socket> {
    return new Set(this.tcp?.sockets.keys())
  }

  constructor(
    readonly at: ListenAddress,
    private readonly handler: DnsHandler,
    private readonly tcpOptions: TcpOptions,
    private readonly log: Logger,
    private readonly interfaces: Interfaces = networkInterfaces,
    private readonly rescanMs = WILDCARD_RESCAN_MS,
  ) {}

  async start(): Promise<BoundAddress[]> {
    const family = (this.family = isIP(this.at.host) === 6 ? 6 : 4)
    const wildcard = isWildcard(this.at.host)
    const local = wildcard ? localAddresses(family, this.interfaces()) : []
    // A host without an address of the family (IPv6 turned off): the wildcard as given.
    const udpHosts = local.length > 0 ? local : [this.at.host]
    // With port 0 the OS picks the UDP port (on the first address); the other addresses and TCP
    // then take the same number, all of it retried if one is taken.
    for (let attempt = 0; ; attempt++) {
      const udps = new Map<string, UdpListener>()
      let port = this.at.port
      try {
        for (const host of udpHosts) {
          // A host address that has gone (or is tentative) is left out; the address asked for is not.
          const udp = await this.bindUdp(host, port, host !== this.at.host ? GONE : [])
          if (!udp) continue
          udps.set(host, udp)
          port = udp.address().port
        }
        if (udps.size === 0) throw new MeridianError('E_LISTEN', `cannot listen: no address of ${this.at.host} could be bound for UDP`)
        const tcp = new TcpListener(this.handler, this.tcpOptions)
        await bind(tcp, (done) => tcp.listen({ host: this.at.host, port, ipv6Only: family === 6, backlog: 511 }, done))
        tcp.on('error', (err) => this.log.error({ err: err.message }, 'TCP server error'))
        this.udps = udps
        this.tcp = tcp
        this.port = port
        if (local.length > 0 && this.rescanMs > 0) this.rescanTimer = setInterval(() => this.rescan().catch((err: unknown) => this.log.error({ err }, 'looking at the host\'s addresses failed; the UDP sockets stay as they were')), this.rescanMs).unref()
        return [
          ...[...udps.values()].map((u): BoundAddress => ({ transport: 'udp', address: u.address().address, port })),
          { transport: 'tcp', address: this.at.host, port },
        ]
      } catch (err) {
        for (const u of udps.values()) u.close()
        if (this.at.port === 0 && errCode(err) === 'EADDRINUSE' && attempt < 20) continue
        throw err
      }
    }
  }

  /**
   * A UDP socket on `host`:`port`, or null (logged once per address) when binding fails with one of
   * the `tolerated` error codes; any other error is thrown.
   */
  private async bindUdp(host: string, port: number, tolerated: readonly string[]): Promise<UdpListener | null> {
    const udp = new UdpListener(this.family, this.handler)
    udp.on('error', (err) => this.log.error({ err: err.message, at: formatAddress(host, port) }, 'UDP socket error'))
    try {
      await bind(udp, (done) => udp.bind(port, host, done))
    } catch (err) {
      if (!tolerated.includes(errCode(err) ?? '')) throw err
      udp.close()
      if (!this.unbindable.has(host)) this.log.warn({ at: formatAddress(host, port), err: (err as Error).message }, 'a local address cannot be bound for UDP; queries to it are not answered (tried again at each look at the addresses)')
      this.unbindable.add(host)
      return null
    }
    this.unbindable.delete(host)
    return udp
  }

  /**
   * A wildcard listener's look at the host's addresses: a UDP socket for each new one, none for
   * each one gone. What it bound and closed; nothing when a look is under way or the host shows no
   * address of the family (kept as is rather than left with none).
   */
  async rescan(): Promise<{ added: string[]; removed: string[] }> {
    const none = { added: [], removed: [] }
    if (this.closed || this.tcp === undefined || this.rescanning) return none
    const now = localAddresses(this.family, this.interfaces())
    if (now.length === 0) return none
    const work = this.follow(now)
    this.rescanning = work
    try {
      return await work
    } finally {
      this.rescanning = undefined
    }
  }

  /** Binds the addresses of `now` that have no socket, closes the sockets of those it lacks. */
  private async follow(now: string[]): Promise<{ added: string[]; removed: string[] }> {
    const added: string[] = []
    const removed: string[] = []
    for (const host of now) {
      if (this.udps.has(host)) continue
      // Another process may hold the port on an address added since the start: left out too.
      const udp = await this.bindUdp(host, this.port, [...GONE, 'EADDRINUSE'])
      if (!udp) continue
      if (this.closed) {
        udp.close()
        break
      }
      this.udps.set(host, udp)
      added.push(host)
    }
    for (const [host, udp] of this.udps) {
      if (now.includes(host) || this.closed) continue
      this.udps.delete(host)
      udp.close()
      removed.push(host)
    }
    for (const host of this.unbindable) if (!now.includes(host)) this.unbindable.delete(host)
    if (added.length > 0 || removed.length > 0) this.log.info({ port: this.port, added, removed, udp: [...this.udps.keys()] }, 'the host\'s addresses changed: UDP sockets follow')
    return { added, removed }
  }

  /**
   * Stops accepting TCP connections, and at the same time: each UDP socket answers the queries it
   * holds and is closed once quiet (UdpListener.drain, at most `udpMs`), each open connection
   * answers what its client had sent and is then ended, for up to `graceMs` (TcpListener.shutdown).
   */
  async close(graceMs = TCP_SHUTDOWN_GRACE_MS, udpMs = UDP_DRAIN_MAX_MS): Promise<void> {
    this.closed = true
    clearInterval(this.rescanTimer)
    await this.rescanning?.catch(() => undefined)
    const udps = [...this.udps.values()]
    this.udps = new Map()
    const tcp = this.tcp
    this.tcp = undefined
    await Promise.all([...udps.map((udp) => udp.drain(udpMs)), tcp?.shutdown(graceMs)])
  }
}

/**
 * How long a shutdown waits for open TCP connections to be answered and closed before it drops
 * them: under a DNS worker's own 3 s exit deadline (src/cluster/worker.ts).
 */
const TCP_SHUTDOWN_GRACE_MS = 2000

/** A UDP socket being shut down is closed once no datagram has come for this long (UdpListener.drain). */
const UDP_QUIET_MS = 5

/** ...or at the latest this long after the shutdown began, when its traffic never stops. */
const UDP_DRAIN_MAX_MS = 500

/** A bind error of an address the host no longer has, or does not have yet (a tentative IPv6 one). */
const GONE = ['EADDRNOTAVAIL']

/** The system error code behind a bind() failure (its cause's). */
function errCode(err: unknown): string | undefined {
  return ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code
}

function bind(target: NodeJS.EventEmitter, start: (done: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(new MeridianError('E_LISTEN', `cannot listen: ${err.message}`, 500, { cause: err }))
    target.once('error', onError)
    start(() => {
      target.removeListener('error', onError)
      resolve()
    })
  })
}
