/**
 * A UDP reply written straight to the socket's native handle, as dgram's own send() ends up doing,
 * without the work dgram does around it for every datagram: argument checks, a one-element list, a
 * closure for the address lookup, an async-id scope, and a new native request object (SendWrap) per
 * datagram. Replies only ever go to the IP literal and port a query came from, on a bound socket,
 * without a callback, so none of that work decides anything. Measured in-process: ~0.4-0.6 µs of
 * CPU less per reply (4.25-4.49 -> 3.83-3.87 µs a datagram, send alone), a few percent of a cached
 * answer's whole cost on the wire (docs/benchmarks.md, session 23).
 *
 * This reads two things Node does not document: the socket's native handle (dgram keeps it in its
 * state under the symbol `state symbol`; in a cluster worker it is the handle shared by the
 * primary) and its `send(req, list, count, port, ip, hasCallback)`, which returns the octets sent
 * plus one when the datagram left at once (uv_udp_try_send), 0 when it was queued (the request
 * object then belongs to the pending send until it completes), or a negative errno. The request's
 * class is the one dgram itself passes (seen on the first reply, which goes through dgram's send).
 * Anything not as expected turns this path off for the socket, and dgram's send answers instead:
 * a Node whose internals differ is slower, never wrong. test/unit/udp-send.test.ts checks the path
 * is taken on the Node this runs on (so an upgrade that changes it is a failed test, not a quiet
 * slowdown).
 */
import type { Socket } from 'node:dgram'

/** The native UDP handle's send, as dgram calls it. */
interface NativeUdp {
  send(req: SendReq, list: Buffer[], count: number, port: number, ip: string, hasCallback: boolean): number
}

interface SendReq {
  list: Buffer[] | null
}

type SendReqClass = new () => SendReq

interface DgramState {
  handle: NativeUdp | null
}

function stateOf(socket: Socket): DgramState | null {
  const sym = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol')
  const state = sym === undefined ? undefined : ((socket as unknown as Record<symbol, unknown>)[sym] as DgramState | undefined)
  return state !== undefined && state !== null && typeof state === 'object' && 'handle' in state ? state : null
}

/**
 * Sends replies for one dgram socket. `send()` never throws for a datagram the kernel refuses (an
 * unreachable network, a full queue): as with dgram's send without a callback, that reply is lost
 * and the client asks again.
 */
export class UdpReplySender {
  private readonly state: DgramState | null
  /** The request class dgram passes to the native send: undefined until seen, null when this path is off. */
  private requestClass: SendReqClass | null | undefined
  private req: SendReq | null = null
  private list: Buffer[] = []

  constructor(private readonly socket: Socket) {
    this.state = stateOf(socket)
    if (this.state === null) this.requestClass = null
  }

  /** Whether replies go to the native handle (false: not yet known, or dgram's send on a Node whose internals differ). */
  get direct(): boolean {
    return this.requestClass !== null && this.requestClass !== undefined
  }

  send(buf: Buffer, port: number, address: string): void {
    const Req = this.requestClass
    const state = this.state
    if (Req && state !== null) {
      const handle = state.handle
      if (handle === null) return // closed: dgram's send would throw "not running"; a reply then has no socket to go to
      const req = this.req ?? (this.req = new Req())
      const list = this.list
      list[0] = buf
      req.list = list
      const sent = handle.send(req, list, 1, port, address, false)
      if (sent > 0) return
      if (sent === 0) {
        // Queued (the socket's send buffer was full): the request and its list, which keeps the
        // octets alive, belong to that send now; the next reply gets new ones.
        this.req = null
        this.list = []
        return
      }
      if (typeof sent !== 'number') this.requestClass = null // not the handle this was written for; dgram's send from now on
      return
    }
    if (Req === undefined && state !== null) return this.learn(buf, port, address, state)
    this.socket.send(buf, port, address)
  }

  /** dgram's send, seeing the request class it passes to the native handle on the way. */
  private learn(buf: Buffer, port: number, address: string, state: DgramState): void {
    const handle = state.handle
    const native = handle?.send
    if (!handle || typeof native !== 'function') {
      this.requestClass = null
      return this.socket.send(buf, port, address)
    }
    const seen: { req?: SendReqClass | null } = {}
    handle.send = function (this: NativeUdp, req: SendReq, ...rest: [Buffer[], number, number, string, boolean]): number {
      seen.req = typeof req === 'object' && req !== null && typeof req.constructor === 'function' ? (req.constructor as SendReqClass) : null
      return native.call(this, req, ...rest)
    }
    try {
      this.socket.send(buf, port, address)
    } finally {
      delete (handle as Partial<NativeUdp>).send
      if (handle.send !== native) handle.send = native
      // Not called (a socket not bound yet queues the send): seen at a later reply.
      if (seen.req !== undefined && this.requestClass === undefined) this.requestClass = seen.req
    }
  }
}
