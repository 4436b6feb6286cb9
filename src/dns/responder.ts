/**
 * The transport-neutral core: a parsed query and a zone set in, an outcome out. UDP and TCP both
 * call `respond()`; rcodes are decided here and nowhere else.
 *
 *   outcome    rcode     AA  answer                authority     when
 *   Answer     NOERROR   1   the RRset (+ CNAMEs)  -             the name has the type
 *   NoData     NOERROR   1   CNAMEs followed       negative SOA  the name exists without the type (empty non-terminals too)
 *   NxDomain   NXDOMAIN  1   CNAMEs followed       negative SOA  the (last) name does not exist
 *   Refused    REFUSED   0   -                     -             not in a served zone, not class IN, zone transfer
 *   FormErr    FORMERR   0   -                     -             malformed query, or a meta type asked as data
 *   NotImp     NOTIMP    0   -                     -             opcode other than QUERY, MAILA/MAILB
 *   BadVers    BADVERS   0   -                     -             EDNS version above 0
 *   NotAuth    NOTAUTH   0   -                     -             TSIG-signed: Meridian knows no key (TSIG error BADKEY)
 *
 * The order of the checks, for every opcode (BIND's ns_client_request): a malformed message is
 * FORMERR (a TSIG not last, a COOKIE of a bad length included), then an EDNS version above 0 is
 * BADVERS (the options of a version not spoken are not read, RFC 6891 §6.1.3), then a TSIG is
 * NOTAUTH/BADKEY (RFC 8945 §5.2.1), then an opcode other than QUERY is NOTIMP.
 */
import type { HealthGenerations } from '../health/poller.js'
import type { ClientLocation, VipHealth } from '../model/gslb.js'
import { isInZone } from '../model/name.js'
import { RRTYPE, type RR, type ServedZone, type ServedZoneSet } from '../model/types.js'
import { select, type Selection } from '../select/select.js'
import { locateRaw, withDefault, type GeoLookup } from './client.js'
import type { Edns, Query, Tsig } from './wire.js'
import { enclosingZone, findZone } from './zone-index.js'

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, NOTAUTH: 9, BADVERS: 16 } as const

export type OutcomeKind = 'answer' | 'nodata' | 'nxdomain' | 'refused' | 'formerr' | 'notimp' | 'badvers' | 'notauth'

export interface Outcome {
  kind: OutcomeKind
  rcode: number
  aa: boolean
  answer: RR[]
  authority: RR[]
  additional: RR[]
  /** ECS scope prefix to return: how much of the client address the answer depended on. */
  ecsScope: number
  /** The served zone the question's name falls in (also when it is not answered from it: BADVERS, class CH...); undefined outside every zone. */
  zone: ServedZone | undefined
  /** The selector's decision, when a GSLB service answered. */
  selection: Selection | undefined
  /** Where the client was taken to be, when a GSLB service answered. */
  client: ClientLocation | undefined
  /** The GSLB service that answered (its owner name). */
  service?: string
}

/** What GSLB answers need beyond the zone set: GeoIP, the health view, and randomness for rotation. */
export interface GslbContext {
  geo: GeoLookup | undefined
  health: (checkKey: string) => VipHealth | undefined
  rand: () => number
  /** The health view's generations, read once per query by the answer cache (health/poller.ts). */
  generations?: () => HealthGenerations
  /** A monotonic clock in ms (default performance.now): the answer cache's latency grace reads it after a latency move. */
  now?: () => number
  /**
   * The checks that moved (state or latency) after a generation, when known (HealthPoller.movedSince),
   * and when they moved (on `now`'s clock; NaN: not known): the answer cache then compares those
   * checks only, not every check its services read, and counts a latency grace from the move.
   */
  movedSince?: (generation: number, visit: (checkKey: string, at: number) => void) => boolean
}

const NO_GSLB: GslbContext = { geo: undefined, health: () => undefined, rand: Math.random }

const EMPTY: RR[] = []

function outcome(kind: OutcomeKind, rcode: number, zone: ServedZone | undefined, answer = EMPTY, authority = EMPTY, additional = EMPTY): Outcome {
  return { kind, rcode, aa: zone !== undefined, answer, authority, additional, ecsScope: 0, zone, selection: undefined, client: undefined }
}

export const refused = (): Outcome => outcome('refused', RCODE.REFUSED, undefined)
export const formerr = (): Outcome => outcome('formerr', RCODE.FORMERR, undefined)

/**
 * An outcome decided without looking the name up (BADVERS, NOTAUTH, a class or type not served):
 * no AA, but `zone` the one the question falls in, so that the query is counted under it as the
 * answers are (meridian_dns_queries_total{zone}).
 */
function unanswered(kind: OutcomeKind, rcode: number, zone: ServedZone | undefined): Outcome {
  const out = outcome(kind, rcode, zone)
  out.aa = false
  return out
}

/** RRsets answered for ANY (RFC 8482 §4.1: one RRset, never the whole node), in this order of preference. */
const ANY_ORDER = [RRTYPE.A, RRTYPE.AAAA, RRTYPE.MX, RRTYPE.TXT, RRTYPE.SRV, RRTYPE.CAA, RRTYPE.SOA, RRTYPE.NS]
const MAX_CNAME_CHAIN = 16

/**
 * Addresses of in-zone targets (NS, MX, SRV) for the additional section, each from the zone that
 * answers for it: a zone of the set nested in this one where there is one (config/load.ts judges a
 * name server there too, and a copy in this zone's file must hold the same addresses), so that the
 * additional section says what a query for the name itself would.
 */
function additionalFor(set: ServedZoneSet, zone: ServedZone, rrs: readonly RR[]): RR[] {
  const out: RR[] = []
  const seen = new Set<string>()
  for (const rr of rrs) {
    const target = rr.type === RRTYPE.NS ? rr.ns : rr.type === RRTYPE.MX ? rr.exchange : rr.type === RRTYPE.SRV ? rr.target : undefined
    if (target === undefined || seen.has(target) || !isInZone(target, zone.origin)) continue
    seen.add(target)
    // In this zone (isInZone above), so findZone finds this zone or one nested in it.
    const node = findZone(set, target)!.nodes.get(target)
    if (!node) continue
    for (const t of [RRTYPE.A, RRTYPE.AAAA]) {
      const addresses = node.rrsets.get(t)
      if (addresses) out.push(...addresses)
    }
  }
  return out
}

/**
 * Where the client of the query being answered is, no zone default applied, if already known (the
 * answer cache keeps it per client network), else undefined.
 */
export type KnownClient = () => ClientLocation | undefined

/** A GSLB service's answer: the selector's addresses as A or AAAA records, or NODATA. */
function serviceAnswer(zone: ServedZone, name: string, q: Query, peer: string, gslb: GslbContext, answer: RR[], known: KnownClient | undefined): Outcome {
  const service = zone.services.get(name)!
  const qtype = q.qtype === RRTYPE.ANY ? RRTYPE.A : q.qtype
  if (qtype !== RRTYPE.A && qtype !== RRTYPE.AAAA) return outcome('nodata', RCODE.NOERROR, zone, answer, [zone.negativeSoa])
  const client = withDefault(known?.() ?? locateRaw(q.edns?.ecs ?? null, peer, gslb.geo), zone.defaultLocation)
  const selection = select(service, qtype === RRTYPE.A ? 4 : 6, client, { regions: zone.regions, health: gslb.health, rand: gslb.rand })
  const out =
    selection.addresses.length === 0
      ? outcome('nodata', RCODE.NOERROR, zone, answer, [zone.negativeSoa])
      : outcome('answer', RCODE.NOERROR, zone, [...answer, ...selection.addresses.map((address): RR => ({ name, type: qtype, class: 1, ttl: selection.ttl, address }))])
  out.ecsScope = selection.scope
  out.selection = selection
  out.service = name
  out.client = client
  return out
}

/** BADVERS or NOTAUTH, in that order, when the message's OPT or TSIG decides its answer before its opcode and question do; else 0. */
function beforeOpcode(edns: Edns | null, tsig: Tsig | null | undefined): number {
  if (edns && edns.version > 0) return RCODE.BADVERS
  if (tsig) return RCODE.NOTAUTH
  return 0
}

/** The rcode of a readable message of an opcode other than QUERY, in the order respond() checks a query's. */
export function otherOpcode(edns: Edns | null, tsig: Tsig | null): number {
  return beforeOpcode(edns, tsig) || RCODE.NOTIMP
}

export function respond(set: ServedZoneSet, q: Query, peer = '', gslb: GslbContext = NO_GSLB, known?: KnownClient): Outcome {
  const zone = findZone(set, q.qkey)
  const early = beforeOpcode(q.edns, q.tsig)
  if (early === RCODE.BADVERS) return unanswered('badvers', early, zone)
  if (early === RCODE.NOTAUTH) return unanswered('notauth', early, zone)
  if (!zone) return refused()
  if (q.qclass !== 1 && q.qclass !== 255) return unanswered('refused', RCODE.REFUSED, zone)
  const qtype = q.qtype
  if (qtype === RRTYPE.AXFR || qtype === RRTYPE.IXFR) return unanswered('refused', RCODE.REFUSED, zone)
  if (qtype === RRTYPE.OPT || qtype === 249 || qtype === 250) return unanswered('formerr', RCODE.FORMERR, zone)
  if (qtype === 253 || qtype === 254) return unanswered('notimp', RCODE.NOTIMP, zone)

  // DS lives on the parent side of a zone cut (RFC 4035 §3.1.4.1, RFC 4034 §5): at the apex of a
  // zone nested in another this set serves, the parent answers, and it holds no DS (Meridian does
  // not sign): an authoritative NODATA under the parent's SOA. With no parent served, the child
  // answers as for any type it lacks (as BIND and Knot do).
  if (qtype === RRTYPE.DS && q.qkey === zone.origin) {
    const parent = enclosingZone(set, zone)
    if (parent) return outcome('nodata', RCODE.NOERROR, parent, EMPTY, [parent.negativeSoa])
  }

  const answer: RR[] = []
  const visited = new Set<string>()
  let name = q.qkey
  for (let hop = 0; hop <= MAX_CNAME_CHAIN; hop++) {
    visited.add(name)
    const node = zone.nodes.get(name)
    if (!node) return outcome('nxdomain', RCODE.NXDOMAIN, zone, answer, [zone.negativeSoa])
    const cname = node.rrsets.get(RRTYPE.CNAME)
    if (cname && (qtype === RRTYPE.ANY || qtype === RRTYPE.CNAME)) {
      // ANY matches the CNAME itself (RFC 1034 §4.3.2 step 3a): no chase.
      answer.push(...cname)
      return outcome('answer', RCODE.NOERROR, zone, answer)
    }
    if (cname) {
      answer.push(...cname)
      const target = cname[0]!.domain!
      // Chase inside this zone only, not into a zone of the set nested in it (which answers for the
      // name: the parent's data there is not its own, RFC 1034 §4.2.1); a resolver follows the
      // rest. A loop ends the chase.
      if (visited.has(target) || findZone(set, target) !== zone) {
        return outcome('answer', RCODE.NOERROR, zone, answer)
      }
      name = target
      continue
    }
    if (zone.services.has(name)) return serviceAnswer(zone, name, q, peer, gslb, answer, known)
    let rrs: readonly RR[] | undefined
    if (qtype === RRTYPE.ANY) {
      for (const t of ANY_ORDER) if ((rrs = node.rrsets.get(t))) break
    } else {
      rrs = node.rrsets.get(qtype)
    }
    if (!rrs) return outcome('nodata', RCODE.NOERROR, zone, answer, [zone.negativeSoa])
    answer.push(...rrs)
    return outcome('answer', RCODE.NOERROR, zone, answer, EMPTY, additionalFor(set, zone, rrs))
  }
  return outcome('answer', RCODE.NOERROR, zone, answer)
}
