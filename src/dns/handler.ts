/**
 * One message in, at most one message out, whatever the transport (gdnsd's process_dns_query):
 * parse, respond, encode within the transport's size limit. Returns null to drop.
 */
import { setImmediate } from 'node:timers/promises'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics/index.js'
import type { ServedZoneSet } from '../model/types.js'
import { AnswerCache, DEFAULT_ANSWER_CACHE, type AnswerCacheOptions } from './answer-cache.js'
import { DEFAULT_EDNS_UDP_SIZE, encodeOtherOpcode, encodeResponse, encodeServFail, encodeTsigError, replyLimit } from './encode.js'
import { formerr, otherOpcode, RCODE, respond, type GslbContext, type Outcome } from './responder.js'
import { parseQuery, type Query } from './wire.js'
import { findZone } from './zone-index.js'

export type Transport = 'udp' | 'tcp'

const NO_HEALTH = { generation: 0, stateGeneration: 0 }


export interface HandlerOptions {
  /** UDP payload size advertised in OPT and the cap on UDP answers to EDNS clients. */
  ednsUdpSize: number
  /** Log every query at debug level (off by default: the hot path logs nothing). */
  queryLog: boolean
  /** The answer cache's bounds; maxEntries 0 turns it off. */
  answerCache: AnswerCacheOptions
  /** This server's NSID (RFC 5001) as hex, sent to the queries that ask for it; undefined: none. */
  nsid?: string
}

export class DnsHandler {
  private readonly options: HandlerOptions
  /** Encoded answers by name, type and client key (answer-cache.ts); undefined when turned off. */
  readonly cache: AnswerCache | undefined
  private readonly nsid: Buffer | null

  constructor(
    private zones: () => ServedZoneSet,
    private readonly log: Logger,
    options: Partial<HandlerOptions> = {},
    private readonly gslb?: GslbContext,
    private readonly metrics?: Metrics,
  ) {
    this.options = { ednsUdpSize: options.ednsUdpSize ?? DEFAULT_EDNS_UDP_SIZE, queryLog: options.queryLog ?? false, answerCache: options.answerCache ?? DEFAULT_ANSWER_CACHE }
    this.nsid = options.nsid ? Buffer.from(options.nsid, 'hex') : null
    if (this.options.answerCache.maxEntries > 0) {
      this.cache = new AnswerCache(zones, gslb?.generations ?? (() => NO_HEALTH), gslb?.geo, gslb?.rand ?? Math.random, metrics, this.options.ednsUdpSize, this.options.answerCache, gslb?.now, gslb?.health, gslb?.movedSince)
      metrics?.cache(() => ({ entries: this.cache!.size, bytes: this.cache!.bytes }))
    }
  }

  /** The answer cache's work for the current zone set, done now rather than at the next query (AnswerCache.prepare); never throws. */
  prepare(): void {
    try {
      this.cache?.prepare()
    } catch (err) {
      this.log.error({ err }, 'preparing the answer cache for the zone set failed; the first query does it')
    }
  }

  /**
   * The answer cache's indexes of a zone set about to be served, made ahead in steps with a turn of
   * the event loop between them (AnswerCache.prepareNext): a one-process server's first query under
   * a big new set does not make them in one long turn. Never rejects.
   */
  async prepareNext(set: ServedZoneSet): Promise<void> {
    try {
      // setImmediate: a turn of the event loop, which polls for I/O (the DNS sockets) before it.
      await this.cache?.prepareNext(set, setImmediate)
    } catch (err) {
      this.log.error({ err }, 'preparing the answer cache for a new zone set failed; its first query does it')
    }
  }

  /** Never throws: a listener calls it from a socket's event, where a throw would end the process. */
  handle(msg: Buffer, transport: Transport, peer: string): Buffer | null {
    const cache = this.cache
    if (cache) {
      let hit: Buffer | null
      try {
        hit = cache.lookup(msg, peer, transport === 'tcp')
      } catch (err) {
        // A bug (a peer that is no address is a miss, not a throw): logged, and the full path (which catches its own) answers.
        this.log.error({ err, peer, transport }, 'answer cache lookup failed')
        hit = null
      }
      if (hit) {
        if (this.options.queryLog) this.log.debug({ peer, transport, cached: true, size: hit.length }, 'query')
        return hit
      }
    }
    const parsed = parseQuery(msg)
    let out: Outcome
    let reply: Buffer | null
    switch (parsed.kind) {
      case 'drop':
        this.metrics?.drop()
        if (this.options.queryLog) this.log.debug({ peer, transport, reason: parsed.reason }, 'dropped')
        return null
      case 'notimp': {
        // BADVERS and BADKEY come before NOTIMP, as for a query (responder.ts).
        const rcode = otherOpcode(parsed.edns, parsed.tsig)
        this.metrics?.query('', 0, rcode)
        return encodeOtherOpcode(parsed.id, parsed.opcode, rcode, parsed.edns, parsed.tsig, this.options.ednsUdpSize, Date.now(), this.maxSize(parsed.edns, transport))
      }
      case 'formerr':
        out = formerr()
        if (this.options.queryLog) this.log.debug({ peer, transport, reason: parsed.reason }, 'FORMERR')
        reply = this.encode(parsed, parsed.question, out, parsed.edns, transport)
        if (!reply) {
          out = { ...out, rcode: RCODE.SERVFAIL }
          reply = encodeServFail(parsed, parsed.question, parsed.edns, this.options.ednsUdpSize)
        }
        break
      case 'query': {
        const q = parsed.query
        try {
          out = respond(this.zones(), q, peer, this.gslb, cache?.locateLast)
        } catch (err) {
          this.log.error({ err, qname: q.qname, qtype: q.qtype }, 'responder failed')
          // Counted under the zone the question falls in, as every other answer to it is.
          this.metrics?.query(findZone(this.zones(), q.qkey)?.origin ?? '', q.qtype, RCODE.SERVFAIL)
          return encodeServFail(q, q, q.edns, this.options.ednsUdpSize)
        }
        if (out.kind === 'notauth') reply = encodeTsigError(q, q, q.edns, q.tsig!, this.options.ednsUdpSize, Date.now(), this.maxSize(q.edns, transport))
        else reply = (cache && this.cached(cache, q, out, transport)) || this.encode(q, q, out, q.edns, transport)
        if (!reply) {
          // Logged by encode(): a SERVFAIL went out, counted as one under the zone, no region answered.
          out = { ...out, rcode: RCODE.SERVFAIL, selection: undefined }
          reply = encodeServFail(q, q, q.edns, this.options.ednsUdpSize)
        }
        if (this.options.queryLog) this.log.debug({ peer, transport, qname: q.qname, qtype: q.qtype, rcode: out.rcode, answers: out.answer.length }, 'query')
        break
      }
    }
    if (this.metrics) {
      const zone = out.zone?.origin ?? ''
      this.metrics.query(zone, parsed.kind === 'query' ? parsed.query.qtype : 0, out.rcode)
      const sel = out.selection
      if (sel && sel.regions.length > 0 && out.service) this.metrics.answer(zone, out.service, sel.regions[0]!)
    }
    return reply
  }

  /** The reply from the cache: a new entry (cacheable answers), or an NXDOMAIN assembled from its SOA template. */
  private cached(cache: AnswerCache, q: Query, out: Outcome, transport: Transport): Buffer | null {
    try {
      if (out.kind === 'nxdomain') return cache.negative(q, out, this.maxSize(q.edns, transport))
      return cache.insert(q, out)
    } catch (err) {
      this.log.error({ err, qname: q.qname, qtype: q.qtype }, 'caching an answer failed')
      return null
    }
  }

  private maxSize(edns: { udpSize: number } | null, transport: Transport): number {
    return replyLimit(transport === 'tcp', edns ? edns.udpSize : null, this.options.ednsUdpSize)
  }

  /** The reply to `out`, or null (logged) if it cannot be encoded: the caller answers SERVFAIL and counts one. */
  private encode(head: { id: number; rd: boolean }, q: Parameters<typeof encodeResponse>[1], out: Outcome, edns: Parameters<typeof encodeResponse>[3], transport: Transport): Buffer | null {
    try {
      return encodeResponse(head, q, out, edns, this.maxSize(edns, transport), this.options.ednsUdpSize, this.nsid)
    } catch (err) {
      this.log.error({ err, qname: q?.qname }, 'encoding a response failed')
      return null
    }
  }
}
