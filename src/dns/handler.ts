/**
 * One message in, at most one message out, whatever the transport (gdnsd's process_dns_query):
 * parse, respond, encode within the transport's size limit. Returns null to drop.
 */
import type { Logger } from '../log.js'
import type { ZoneSet } from '../model/types.js'
import { DEFAULT_EDNS_UDP_SIZE, encodeNotImp, encodeResponse, encodeServFail, MAX_TCP_MESSAGE } from './encode.js'
import { formerr, respond, type GslbContext, type Outcome } from './responder.js'
import { parseQuery } from './wire.js'

export type Transport = 'udp' | 'tcp'

export interface HandlerOptions {
  /** UDP payload size advertised in OPT and the cap on UDP answers to EDNS clients. */
  ednsUdpSize: number
  /** Log every query at debug level (off by default: the hot path logs nothing). */
  queryLog: boolean
}

export interface QueryStats {
  queries: number
  dropped: number
  byRcode: Map<number, number>
}

export class DnsHandler {
  readonly stats: QueryStats = { queries: 0, dropped: 0, byRcode: new Map() }
  private readonly options: HandlerOptions

  constructor(
    private zones: () => ZoneSet,
    private readonly log: Logger,
    options: Partial<HandlerOptions> = {},
    private readonly gslb?: GslbContext,
  ) {
    this.options = { ednsUdpSize: options.ednsUdpSize ?? DEFAULT_EDNS_UDP_SIZE, queryLog: options.queryLog ?? false }
  }

  handle(msg: Buffer, transport: Transport, peer: string): Buffer | null {
    this.stats.queries++
    const parsed = parseQuery(msg)
    let out: Outcome
    let reply: Buffer
    switch (parsed.kind) {
      case 'drop':
        this.stats.dropped++
        if (this.options.queryLog) this.log.debug({ peer, transport, reason: parsed.reason }, 'dropped')
        return null
      case 'notimp':
        this.count(4)
        return encodeNotImp(parsed.id, parsed.opcode, parsed.edns, this.options.ednsUdpSize)
      case 'formerr':
        out = formerr()
        if (this.options.queryLog) this.log.debug({ peer, transport, reason: parsed.reason }, 'FORMERR')
        reply = this.encode(parsed, parsed.question, out, parsed.edns, transport)
        break
      case 'query': {
        const q = parsed.query
        try {
          out = respond(this.zones(), q, peer, this.gslb)
        } catch (err) {
          this.log.error({ err, qname: q.qname, qtype: q.qtype }, 'responder failed')
          this.count(2)
          return encodeServFail(q, q)
        }
        reply = this.encode(q, q, out, q.edns, transport)
        if (this.options.queryLog) this.log.debug({ peer, transport, qname: q.qname, qtype: q.qtype, rcode: out.rcode, answers: out.answer.length }, 'query')
        break
      }
    }
    this.count(out.rcode)
    return reply
  }

  private encode(head: { id: number; rd: boolean; cd: boolean }, q: Parameters<typeof encodeResponse>[1], out: Outcome, edns: Parameters<typeof encodeResponse>[3], transport: Transport): Buffer {
    const size = this.options.ednsUdpSize
    const max = transport === 'tcp' ? MAX_TCP_MESSAGE : edns ? Math.min(edns.udpSize, size) : 512
    try {
      return encodeResponse(head, q, out, edns, max, size)
    } catch (err) {
      this.log.error({ err, qname: q?.qname }, 'encoding a response failed')
      return encodeServFail(head, q)
    }
  }

  private count(rcode: number): void {
    this.stats.byRcode.set(rcode, (this.stats.byRcode.get(rcode) ?? 0) + 1)
  }
}
