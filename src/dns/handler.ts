/**
 * One message in, at most one message out, whatever the transport (gdnsd's process_dns_query):
 * parse, respond, encode within the transport's size limit. Returns null to drop.
 */
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics/index.js'
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

export class DnsHandler {
  private readonly options: HandlerOptions

  constructor(
    private zones: () => ZoneSet,
    private readonly log: Logger,
    options: Partial<HandlerOptions> = {},
    private readonly gslb?: GslbContext,
    private readonly metrics?: Metrics,
  ) {
    this.options = { ednsUdpSize: options.ednsUdpSize ?? DEFAULT_EDNS_UDP_SIZE, queryLog: options.queryLog ?? false }
  }

  handle(msg: Buffer, transport: Transport, peer: string): Buffer | null {
    const parsed = parseQuery(msg)
    let out: Outcome
    let reply: Buffer
    switch (parsed.kind) {
      case 'drop':
        this.metrics?.drop()
        if (this.options.queryLog) this.log.debug({ peer, transport, reason: parsed.reason }, 'dropped')
        return null
      case 'notimp':
        this.metrics?.query('', 0, 4)
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
          this.metrics?.query('', q.qtype, 2)
          return encodeServFail(q, q)
        }
        reply = this.encode(q, q, out, q.edns, transport)
        if (this.options.queryLog) this.log.debug({ peer, transport, qname: q.qname, qtype: q.qtype, rcode: out.rcode, answers: out.answer.length }, 'query')
        break
      }
    }
    if (this.metrics) {
      const zone = out.zone?.origin ?? ''
      this.metrics.query(zone, parsed.kind === 'query' ? parsed.query.qtype : 0, out.rcode)
      const sel = out.selection
      if (sel && sel.regions.length > 0) this.metrics.answer(zone, out.answer[out.answer.length - 1]!.name, sel.regions[0]!)
    }
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
}
